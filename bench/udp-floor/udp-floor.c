// The kernel's floor under any SFU on this machine: what sending one UDP packet costs in
// CPU with nothing else (no encryption, no JavaScript, no WebRTC stack), on loopback to N
// receiving sockets in another process, as the SFU bench sends. See run.ts.
//
//   udp-floor recv <sockets> <first-port>
//   udp-floor send <sockets> <first-port> <packets/s> <seconds> <size> <sendto|sendmmsg>
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SOCKETS 4096
#define BATCH 64

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + t.tv_nsec / 1e9;
}

static struct sockaddr_in addr(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Reads until no packet has come for 2 s, then prints how many it got.
static int receive(int n, int base) {
  int ep = epoll_create1(0);
  for (int i = 0; i < n; i++) {
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = addr(base + i);
    if (bind(s, (struct sockaddr *)&a, sizeof a) != 0) {
      perror("bind");
      return 1;
    }
    struct epoll_event e = {.events = EPOLLIN, .data.fd = s};
    epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
  }
  printf("ready\n");
  fflush(stdout);
  static char buf[2048];
  long got = 0;
  struct epoll_event ev[64];
  int idle = 0;
  while (idle < 2) {
    int k = epoll_wait(ep, ev, 64, 1000);
    if (k == 0 && got > 0) idle++;
    for (int j = 0; j < k; j++)
      while (recv(ev[j].data.fd, buf, sizeof buf, 0) > 0) got++;
  }
  printf("{\"received\":%ld}\n", got);
  return 0;
}

static int send_packets(int n, int base, long pps, double seconds, int size, int mmsg) {
  static struct sockaddr_in to[MAX_SOCKETS];
  static char buf[2048];
  static struct mmsghdr msgs[BATCH];
  static struct iovec iov[BATCH];
  int s = socket(AF_INET, SOCK_DGRAM, 0);
  for (int i = 0; i < n; i++) to[i] = addr(base + i);
  buf[0] = (char)0x80;
  long sent = 0;
  int next = 0;
  double t0 = now();
  // Paced like the SFU bench: what is due by now is sent, then a 2 ms sleep.
  while (now() - t0 < seconds) {
    long due = (long)((now() - t0) * pps);
    while (sent < due) {
      if (!mmsg) {
        sendto(s, buf, size, 0, (struct sockaddr *)&to[next], sizeof to[next]);
        next = (next + 1) % n;
        sent++;
        continue;
      }
      int k = 0;
      for (; k < BATCH && sent + k < due; k++) {
        iov[k].iov_base = buf;
        iov[k].iov_len = size;
        memset(&msgs[k], 0, sizeof msgs[k]);
        msgs[k].msg_hdr.msg_iov = &iov[k];
        msgs[k].msg_hdr.msg_iovlen = 1;
        msgs[k].msg_hdr.msg_name = &to[next];
        msgs[k].msg_hdr.msg_namelen = sizeof to[next];
        next = (next + 1) % n;
      }
      int r = sendmmsg(s, msgs, k, 0);
      if (r <= 0) {
        perror("sendmmsg");
        return 1;
      }
      sent += r;
    }
    usleep(2000);
  }
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  double user = r.ru_utime.tv_sec + r.ru_utime.tv_usec / 1e6;
  double sys = r.ru_stime.tv_sec + r.ru_stime.tv_usec / 1e6;
  printf("{\"sent\":%ld,\"userSeconds\":%.3f,\"systemSeconds\":%.3f}\n", sent, user, sys);
  return 0;
}

int main(int argc, char **argv) {
  if (argc >= 4 && strcmp(argv[1], "recv") == 0) return receive(atoi(argv[2]), atoi(argv[3]));
  if (argc >= 8 && strcmp(argv[1], "send") == 0) {
    int n = atoi(argv[2]);
    if (n < 1 || n > MAX_SOCKETS) return 2;
    return send_packets(n, atoi(argv[3]), atol(argv[4]), atof(argv[5]), atoi(argv[6]),
                        strcmp(argv[7], "sendmmsg") == 0);
  }
  fprintf(stderr, "usage: udp-floor recv N PORT | send N PORT PPS SECONDS SIZE sendto|sendmmsg\n");
  return 2;
}
