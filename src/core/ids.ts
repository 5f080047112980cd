/** Branded ids: a UserId cannot be passed where a RoomId is expected. */
declare const brand: unique symbol;
export type Brand<T, B extends string> = T & { readonly [brand]: B };

export type UserId = Brand<string, 'UserId'>;
export type ConnectionId = Brand<string, 'ConnectionId'>;

export const asUserId = (s: string): UserId => s as UserId;
