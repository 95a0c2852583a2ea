/* Byte pump for bench/l4.sh: `l4_pump sink PORT` accepts connections on 127.0.0.1:PORT and reads
 * each to EOF, then closes it; `l4_pump send PORT BYTES STREAMS` opens STREAMS connections to
 * 127.0.0.1:PORT, writes BYTES spread over them, half-closes each, waits for the sink's close,
 * and prints the seconds it took. Reused 256 KiB buffers, no per-write work, so the proxy in the
 * middle is what limits the rate. */
#define _POSIX_C_SOURCE 200809L
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BUF (256 * 1024)

static struct sockaddr_in addr_of(int port) {
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

static void *drain(void *arg) {
  int fd = (int)(intptr_t)arg;
  char *b = malloc(BUF);
  while (read(fd, b, BUF) > 0) {
  }
  free(b);
  close(fd);
  return NULL;
}

static int sink(int port) {
  struct sockaddr_in a = addr_of(port);
  int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
  setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  if (bind(l, (struct sockaddr *)&a, sizeof a) != 0 || listen(l, 128) != 0) {
    perror("sink");
    return 1;
  }
  for (;;) {
    pthread_t t;
    int c = accept(l, NULL, NULL);
    if (c < 0) continue;
    pthread_create(&t, NULL, drain, (void *)(intptr_t)c);
    pthread_detach(t);
  }
}

struct job {
  int port;
  long long bytes;
};

static void *send_one(void *arg) {
  struct job *j = arg;
  struct sockaddr_in a = addr_of(j->port);
  char *b = calloc(1, BUF);
  long long left = j->bytes;
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
    perror("connect");
    exit(1);
  }
  while (left > 0) {
    ssize_t n = write(fd, b, left < BUF ? (size_t)left : BUF);
    if (n <= 0) {
      perror("write");
      exit(1);
    }
    left -= n;
  }
  shutdown(fd, SHUT_WR);
  while (read(fd, b, BUF) > 0) {
  }
  close(fd);
  free(b);
  return NULL;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "sink") == 0) return sink(atoi(argv[2]));
  if (argc == 5 && strcmp(argv[1], "send") == 0) {
    int i, streams = atoi(argv[4]);
    struct job j;
    pthread_t t[64];
    struct timespec t0, t1;
    if (streams < 1 || streams > 64) return 2;
    j.port = atoi(argv[2]);
    j.bytes = atoll(argv[3]) / streams;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (i = 0; i < streams; i++) pthread_create(&t[i], NULL, send_one, &j);
    for (i = 0; i < streams; i++) pthread_join(t[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    printf("%.6f\n", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    return 0;
  }
  fprintf(stderr, "usage: l4_pump sink PORT | send PORT BYTES STREAMS\n");
  return 2;
}
