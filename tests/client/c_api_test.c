/* The C interface (slab/slab.h) from a C program, against a running shmd found through
 * $SHMD_SOCKET with two pools: "test" (64-byte slots) and "arena" (16-byte slots, mode =
 * "arena"). c_api_driver_test.cpp starts that shmd and runs this program; it prints one
 * line per check and "c_api_test: all checks passed" at the end, and exits 1 at the
 * first failed check (saying which, and slab_last_error()).
 */
#include <slab/slab.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int checks = 0;

#define CHECK(cond)                                                                                \
  do {                                                                                             \
    ++checks;                                                                                      \
    if (!(cond)) {                                                                                 \
      printf("FAIL %s:%d: %s (last error: %s)\n", __FILE__, __LINE__, #cond, slab_last_error());   \
      exit(1);                                                                                     \
    }                                                                                              \
  } while (0)

/* The code `call` returned must be `want`, with a message that mentions `needle`. */
#define CHECK_CODE(call, want, needle)                                                             \
  do {                                                                                             \
    int rc_ = (call);                                                                              \
    CHECK(rc_ == (want));                                                                          \
    CHECK(strstr(slab_last_error(), (needle)) != NULL);                                            \
    printf("ok: %s -> %s: %s\n", #want, slab_strerror(rc_), slab_last_error());                    \
  } while (0)

struct record {
  uint64_t id;
  double price;
};

static void errors_before_any_pool(void) {
  slab_client* c = NULL;
  CHECK_CODE(slab_attach("/nonexistent/dir/shmd.sock", &c), SLAB_E_NO_DAEMON, "/nonexistent");
  CHECK(c == NULL);
  CHECK_CODE(slab_attach(NULL, NULL), SLAB_E_INVALID_ARGUMENT, "out is NULL");
  CHECK_CODE(slab_open(NULL, "test", 8, 8, NULL), SLAB_E_INVALID_ARGUMENT, "client is NULL");
  CHECK(slab_get(NULL, 1) == NULL);
  slab_close(NULL);
  slab_detach(NULL);
}

static void strerror_covers_every_code(void) {
  const int codes[] = {SLAB_OK,
                       SLAB_E_EXHAUSTED,
                       SLAB_E_OUT_OF_MEMORY,
                       SLAB_E_HUGEPAGES,
                       SLAB_E_MLOCK,
                       SLAB_E_NUMA,
                       SLAB_E_INVALID_ARGUMENT,
                       SLAB_E_CONFIG,
                       SLAB_E_NO_DAEMON,
                       SLAB_E_PERMISSION_DENIED,
                       SLAB_E_ABI_MISMATCH,
                       SLAB_E_PROTOCOL,
                       SLAB_E_TYPE_MISMATCH,
                       SLAB_E_NOT_FOUND,
                       SLAB_E_SYSTEM,
                       SLAB_E_NOT_SUPPORTED,
                       SLAB_E_STALE,
                       SLAB_E_INTERNAL};
  const size_t n = sizeof codes / sizeof codes[0];
  const char* unknown = slab_strerror(12345);
  CHECK(unknown != NULL && strstr(unknown, "unknown") != NULL);
  for (size_t i = 0; i < n; ++i) {
    const char* s = slab_strerror(codes[i]);
    CHECK(s != NULL && s[0] != '\0' && strcmp(s, unknown) != 0);
    for (size_t j = 0; j < i; ++j)
      CHECK(strcmp(s, slab_strerror(codes[j])) != 0);
  }
  printf("ok: slab_strerror names %zu codes\n", n);
}

static void slab_pool_roundtrip(slab_client* c) {
  slab_pool* p = NULL;
  CHECK_CODE(slab_open(c, "no-such-pool", 8, 8, &p), SLAB_E_NOT_FOUND, "no-such-pool");
  CHECK_CODE(slab_open(c, "test", 4096, 8, &p), SLAB_E_TYPE_MISMATCH, "4096 bytes");
  CHECK_CODE(slab_open(c, "test", 0, 8, &p), SLAB_E_INVALID_ARGUMENT, "size 0");
  CHECK_CODE(slab_open(c, "test", 8, 3, &p), SLAB_E_INVALID_ARGUMENT, "power of two");
  CHECK(p == NULL);
  CHECK(slab_open(c, "test", sizeof(struct record), _Alignof(struct record), &p) == SLAB_OK);

  slab_pool_stats st0;
  CHECK(slab_stats(p, &st0) == SLAB_OK);
  CHECK(strcmp(st0.name, "test") == 0 && st0.slot_size == 64 && st0.arena == 0);

  enum { n = 1000 };
  static slab_key keys[n];
  for (uint64_t i = 0; i < n; ++i) {
    void* v = NULL;
    CHECK(slab_alloc(p, &keys[i], &v) == SLAB_OK && keys[i] != 0 && v != NULL);
    struct record r = {i, (double)i * 0.5};
    memcpy(v, &r, sizeof r);
  }
  slab_pool_stats st1;
  CHECK(slab_stats(p, &st1) == SLAB_OK && st1.live == st0.live + n);
  for (uint64_t i = 0; i < n; ++i) {
    const struct record* r = slab_get(p, keys[i]);
    CHECK(r != NULL && r->id == i && r->price == (double)i * 0.5);
  }
  struct record taken;
  CHECK(slab_take(p, keys[1], &taken, sizeof taken) == SLAB_OK);
  CHECK(taken.id == 1 && taken.price == 0.5 && slab_get(p, keys[1]) == NULL);
  CHECK_CODE(slab_take(p, keys[1], &taken, sizeof taken), SLAB_E_STALE, "slab_take: key");
  CHECK_CODE(slab_take(p, keys[2], NULL, sizeof taken), SLAB_E_INVALID_ARGUMENT, "out");
  CHECK_CODE(slab_take(p, keys[2], &taken, 1U << 20), SLAB_E_INVALID_ARGUMENT, "per slot");
  CHECK(slab_get(p, keys[2]) != NULL);
  for (uint64_t i = 0; i < n; ++i)
    if (i != 1) CHECK(slab_free(p, keys[i]) == SLAB_OK);
  CHECK(slab_get(p, keys[0]) == NULL);
  CHECK_CODE(slab_free(p, keys[0]), SLAB_E_STALE, "not live in pool 'test'");
  CHECK_CODE(slab_free(p, 0), SLAB_E_STALE, "key 0");
  CHECK_CODE(slab_alloc(p, NULL, NULL), SLAB_E_INVALID_ARGUMENT, "key is NULL");
  CHECK(slab_stats(p, &st1) == SLAB_OK && st1.live == st0.live);
  printf("ok: %d values allocated, read back and freed in pool 'test'\n", n);

  /* The payload pointer is optional; the pool outlives its client's handle. */
  slab_key k = 0;
  CHECK(slab_alloc(p, &k, NULL) == SLAB_OK && slab_get(p, k) != NULL);
  slab_detach(c);
  CHECK(slab_free(p, k) == SLAB_OK);
  slab_close(p);
  printf("ok: a pool stays usable after its client is detached\n");
}

static void arena_pool_refuses_free(slab_client* c) {
  slab_pool* a = NULL;
  CHECK(slab_open(c, "arena", 16, 8, &a) == SLAB_OK);
  slab_pool_stats st;
  CHECK(slab_stats(a, &st) == SLAB_OK && st.arena == 1);
  slab_key k = 0;
  void* v = NULL;
  CHECK(slab_alloc(a, &k, &v) == SLAB_OK);
  memcpy(v, "arena value", 12);
  CHECK(slab_get(a, k) == v && strcmp((const char*)slab_get(a, k), "arena value") == 0);
  CHECK_CODE(slab_free(a, k), SLAB_E_NOT_SUPPORTED, "is an arena");
  CHECK(slab_get(a, k) == v); /* still there */
  slab_close(a);
}

int main(void) {
  errors_before_any_pool();
  strerror_covers_every_code();
  slab_client* c = NULL;
  CHECK(slab_attach(NULL, &c) == SLAB_OK && c != NULL);
  arena_pool_refuses_free(c);
  slab_pool_roundtrip(c); /* detaches c */
  printf("c_api_test: all checks passed (%d)\n", checks);
  return 0;
}
