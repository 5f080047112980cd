import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { StatefulSet } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { ConfigMap, Secret, Service } from 'kubernetes-models/v1';
import type { IContainer, IPodSpec } from 'kubernetes-models/v1';
import { loadConfig } from '../../src/config/load-config.js';

/**
 * deploy/k8s, the kustomize base: every manifest parses and validates against the
 * Kubernetes API schemas (kubernetes-models), the base builds with `kubectl kustomize`
 * where kubectl is installed, and the pieces agree with each other and with Chorus: its
 * settings load, the probes, ports, drain timing and user match what the server and the
 * image do.
 */
const dir = join(import.meta.dirname, '../../deploy/k8s');
/** After the grace, closing what is left may take this long before the process exits (src/main.ts). */
const CLOSE_AFTER_GRACE_SECONDS = 5;

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

const models: Record<string, new (data: never) => { validate(): void }> = {
  'v1/Service': Service,
  'v1/ConfigMap': ConfigMap,
  'v1/Secret': Secret,
  'apps/v1/StatefulSet': StatefulSet,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
};

/** Throws with the object's name and the schema's complaint when it does not validate. */
function validate(obj: K8sObject): void {
  const Model = models[`${obj.apiVersion}/${obj.kind}`];
  if (!Model)
    throw new Error(`no Kubernetes model for ${obj.apiVersion} ${obj.kind} (${obj.metadata?.name})`);
  try {
    new Model(obj as never).validate();
  } catch (err) {
    throw new Error(`${obj.kind} ${obj.metadata.name}: ${(err as Error).message}`, { cause: err });
  }
}

function parseManifests(text: string, where: string): K8sObject[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`${where}: ${doc.errors.map((e) => e.message).join('; ')}`);
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

function readEnvFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m) env[m[1]!] = m[2]!;
  }
  return env;
}

function kubectlInstalled(): boolean {
  try {
    execFileSync('kubectl', ['version', '--client'], { stdio: 'ignore' });
    return true;
  } catch {
    process.stderr.write('skipping `kubectl kustomize deploy/k8s`: kubectl is not installed\n');
    return false;
  }
}

const kustomization = parseManifests(
  readFileSync(join(dir, 'kustomization.yaml'), 'utf8'),
  'kustomization',
)[0] as unknown as {
  resources: string[];
  configMapGenerator: { name: string; envs: string[] }[];
  secretGenerator: { name: string }[];
};
const manifestFiles = readdirSync(dir).filter((f) => f.endsWith('.yaml') && f !== 'kustomization.yaml');
const objects = manifestFiles.flatMap((f) => parseManifests(readFileSync(join(dir, f), 'utf8'), f));
const settings = readEnvFile(join(dir, kustomization.configMapGenerator[0]!.envs[0]!));

function find<T>(kind: string, name: string): T {
  const obj = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!obj) throw new Error(`no ${kind} ${name} in deploy/k8s`);
  return obj as unknown as T;
}

type Workload = K8sObject & {
  spec: {
    replicas: number;
    serviceName: string;
    selector: { matchLabels: Record<string, string> };
    template: { metadata: { labels: Record<string, string> }; spec: IPodSpec };
  };
};
const chorus = find<Workload>('StatefulSet', 'chorus');
const pod = chorus.spec.template.spec;
const container = pod.containers.find((c) => c.name === 'chorus') as IContainer;

function portNamed(c: IContainer, name: string | number | undefined): { containerPort: number } {
  const p = c.ports?.find((x) => x.name === name);
  if (!p) throw new Error(`container ${c.name} has no port named ${String(name)}`);
  return p;
}

describe('deploy/k8s', () => {
  it('every manifest validates against the Kubernetes API schemas, and kustomize lists each file', () => {
    expect(objects.length).toBeGreaterThanOrEqual(6);
    for (const obj of objects) validate(obj);
    expect([...kustomization.resources].sort()).toEqual([...manifestFiles].sort());
  });

  it('a manifest the schemas reject is caught (the validation is not a no-op)', () => {
    const broken = structuredClone(chorus);
    (broken.spec as { replicas: unknown }).replicas = 'three';
    expect(() => validate(broken)).toThrow(/replicas/);
    const badPort = structuredClone(chorus);
    badPort.spec.template.spec.containers[0]!.ports![1]!.protocol = 'QUIC' as never;
    expect(() => validate(badPort)).toThrow(/protocol/);
  });

  it.runIf(kubectlInstalled())(
    '`kubectl kustomize` builds the base, and every object it emits validates',
    () => {
      const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
      const built = parseManifests(out, 'kubectl kustomize');
      for (const obj of built) validate(obj);
      const kinds = built.map((o) => o.kind).sort();
      expect(kinds).toEqual(
        [
          'ConfigMap',
          'PodDisruptionBudget',
          'Secret',
          'Service',
          'Service',
          'Service',
          'Service',
          'StatefulSet',
          'StatefulSet',
        ].sort(),
      );
      // The generated ConfigMap/Secret carry a content hash; the StatefulSet must name them so.
      const cm = built.find((o) => o.kind === 'ConfigMap')!;
      const secret = built.find((o) => o.kind === 'Secret')!;
      const sts = built.find(
        (o) => o.kind === 'StatefulSet' && o.metadata.name === 'chorus',
      ) as unknown as Workload;
      const envFrom = sts.spec.template.spec.containers[0]!.envFrom!;
      expect(envFrom.map((e) => e.configMapRef?.name ?? e.secretRef?.name)).toEqual([
        cm.metadata.name,
        secret.metadata.name,
      ]);
      expect(cm.metadata.name).toMatch(/^chorus-config-[a-z0-9]+$/);
      expect(cm.data).toEqual(settings);
    },
    60_000,
  );

  it('the ConfigMap settings are ones Chorus loads, in cluster mode against the NATS Service', () => {
    const config = loadConfig({
      env: { ...settings, ADMIN_TOKEN: 'x'.repeat(16) },
      dotenvPath: '/nonexistent/.env',
    });
    expect(config.cluster.natsUrl).toBeDefined();
    const nats = new URL(settings.CLUSTER_NATS_URL!);
    const natsService = find<K8sObject & { spec: { ports: { port: number }[] } }>('Service', nats.hostname);
    expect(natsService.spec.ports.map((p) => p.port)).toContain(Number(nats.port));
    const natsSts = find<Workload>('StatefulSet', nats.hostname);
    const natsArgs = natsSts.spec.template.spec.containers[0]!.args!;
    expect(natsArgs).toContain('-js');
    // JetStream's store directory is on the claimed volume, not in the container.
    const storeDir = natsArgs[natsArgs.indexOf('-sd') + 1];
    const mounts = natsSts.spec.template.spec.containers[0]!.volumeMounts!;
    const claims = (natsSts.spec as unknown as { volumeClaimTemplates: { metadata: { name: string } }[] })
      .volumeClaimTemplates;
    expect(mounts.find((m) => m.mountPath === storeDir)?.name).toBe(claims[0]!.metadata.name);
  });

  it('Chorus pods: readiness on /readyz, liveness on /healthz, on the port the server listens on', () => {
    const http = portNamed(container, 'http');
    expect(http.containerPort).toBe(Number(settings.HTTP_PORT));
    expect(container.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(container.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(portNamed(container, container.readinessProbe?.httpGet?.port)).toBe(http);
    expect(portNamed(container, container.livenessProbe?.httpGet?.port)).toBe(http);
    // The Services reach it by that name too.
    for (const name of ['chorus', 'chorus-headless']) {
      const svc = find<
        K8sObject & { spec: { selector: Record<string, string>; ports: { targetPort: string }[] } }
      >('Service', name);
      expect(svc.spec.selector).toEqual(chorus.spec.selector.matchLabels);
      expect(svc.spec.ports.map((p) => p.targetPort)).toEqual(['http']);
    }
    expect(chorus.spec.template.metadata.labels).toMatchObject(chorus.spec.selector.matchLabels);
  });

  it('the drain fits: terminationGracePeriodSeconds exceeds preStop + SHUTDOWN_GRACE_SECONDS + the close after it', () => {
    const preStop = container.lifecycle?.preStop?.exec?.command;
    expect(preStop?.[0]).toBe('sleep');
    const preStopSeconds = Number(preStop?.[1]);
    const grace = Number(settings.SHUTDOWN_GRACE_SECONDS);
    expect(grace).toBeGreaterThan(0);
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(
      preStopSeconds + grace + CLOSE_AFTER_GRACE_SECONDS,
    );
    const pdb = find<
      K8sObject & { spec: { maxUnavailable: number; selector: { matchLabels: Record<string, string> } } }
    >('PodDisruptionBudget', 'chorus');
    expect(pdb.spec.selector.matchLabels).toEqual(chorus.spec.selector.matchLabels);
    expect(pdb.spec.maxUnavailable).toBeLessThan(chorus.spec.replicas);
  });

  it('WebRTC UDP: hostPort on the configured port, no hostNetwork, the node address as EXTERNAL_IP, the pod name as node id', () => {
    expect(pod.hostNetwork).not.toBe(true);
    const udp = container.ports!.filter((p) => p.protocol === 'UDP');
    expect(udp).toHaveLength(1);
    // ICE announces the port the server binds, so the node's port must be the same number.
    expect(udp[0]!.containerPort).toBe(Number(settings.WEBRTC_UDP_PORT));
    expect(udp[0]!.hostPort).toBe(udp[0]!.containerPort);
    const env = new Map(container.env!.map((e) => [e.name, e]));
    expect(env.get('EXTERNAL_IP')?.valueFrom?.fieldRef?.fieldPath).toBe('status.hostIP');
    expect(env.get('CLUSTER_NODE_ID')?.valueFrom?.fieldRef?.fieldPath).toBe('metadata.name');
    // One pod per Kubernetes node: two could not both hold the hostPort.
    const anti = pod.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.[0];
    expect(anti?.topologyKey).toBe('kubernetes.io/hostname');
    expect(anti?.labelSelector?.matchLabels).toEqual(chorus.spec.selector.matchLabels);
  });

  it("runs as the image's non-root user, with DATA_DIR on a volume", () => {
    const dockerfile = readFileSync(join(dir, '../../Dockerfile'), 'utf8');
    const user = /^USER (\d+):(\d+)$/m.exec(dockerfile);
    expect(user).not.toBeNull();
    expect(pod.securityContext?.runAsNonRoot).toBe(true);
    expect(pod.securityContext?.runAsUser).toBe(Number(user![1]));
    const dataDir = container.env!.find((e) => e.name === 'DATA_DIR')?.value;
    expect(container.volumeMounts!.map((m) => m.mountPath)).toContain(dataDir);
  });
});
