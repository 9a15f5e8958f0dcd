/* slab.h: the C interface to shared slab pools, for programs in other languages.
 *
 * The C++ API (slab/client.hpp) is the primary one; this is a thin layer over it with
 * opaque handles and integer error codes. Link the slab::client library (CMake) or
 * `pkg-config --libs slab-client`, with a C++ linker or -lstdc++ (the library is C++).
 *
 *   slab_client* c;
 *   slab_pool* p;
 *   if (slab_attach(NULL, &c) != SLAB_OK) {            // $SHMD_SOCKET or the default
 *     fprintf(stderr, "%s\n", slab_last_error());
 *     return 1;
 *   }
 *   if (slab_open(c, "orders", sizeof(struct order), _Alignof(struct order), &p) != SLAB_OK)
 *     ...
 *   slab_key k;
 *   void* v;
 *   if (slab_alloc(p, &k, &v) == SLAB_OK) {            // v: the slot, uninitialised
 *     memcpy(v, &o, sizeof o);
 *     struct order* again = slab_get(p, k);            // NULL once freed, in any process
 *     slab_free(p, k);                                 // SLAB_E_STALE if already freed
 *   }
 *   slab_close(p);
 *   slab_detach(c);
 *
 * Contract:
 *   - Every function returning int returns SLAB_OK (0) or a positive SLAB_E_* code, and
 *     leaves a message saying what failed and why in slab_last_error() (per thread,
 *     valid until this thread's next failing call). Output parameters are written only
 *     on success. No function throws, aborts or crashes on bad input; NULL arguments are
 *     SLAB_E_INVALID_ARGUMENT.
 *   - A slab_pool is one context of the pool (its own cache of free slots): use it from
 *     one thread at a time, open one per thread. A slab_client may be detached before
 *     its pools are closed: they keep the connection they need.
 *   - Keys are 64-bit integers valid in every process attached to the pool; 0 is never
 *     a key. Slot contents are raw bytes: C has no destructor to run on free.
 *   - A pool with mode = "arena" in shmd's config opens like any other, and slab_free
 *     in it fails with SLAB_E_NOT_SUPPORTED: an arena never frees a slot.
 */
#ifndef SLAB_SLAB_H
#define SLAB_SLAB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct slab_client slab_client; /* a connection to shmd */
typedef struct slab_pool slab_pool;     /* one context of one pool */
typedef uint64_t slab_key;              /* generation << 32 | slot index; 0 is never a key */

/* Error codes: the numbers of slab::errc (slab/error.hpp), plus two of the C layer. */
enum {
  SLAB_OK = 0,
  SLAB_E_EXHAUSTED = 1,         /* no free slot and no room to grow; or no context left */
  SLAB_E_OUT_OF_MEMORY = 2,     /* memory could not be obtained */
  SLAB_E_HUGEPAGES = 3,         /* hugepages were required and are not available */
  SLAB_E_MLOCK = 4,             /* memory could not be locked */
  SLAB_E_NUMA = 5,              /* NUMA binding or placement failed */
  SLAB_E_INVALID_ARGUMENT = 6,  /* NULL pointer, size 0, bad alignment, name too long */
  SLAB_E_CONFIG = 7,            /* a configuration file is malformed */
  SLAB_E_NO_DAEMON = 8,         /* shmd is not running at the socket, or went away */
  SLAB_E_PERMISSION_DENIED = 9, /* shmd refused this process's uid/gid */
  SLAB_E_ABI_MISMATCH = 10,     /* library and shmd speak different protocol versions */
  SLAB_E_PROTOCOL = 11,         /* a malformed or unexpected message */
  SLAB_E_TYPE_MISMATCH = 12,    /* the size or alignment does not fit the pool's slots */
  SLAB_E_NOT_FOUND = 13,        /* no such pool */
  SLAB_E_SYSTEM = 14,           /* an OS call failed */
  SLAB_E_NOT_SUPPORTED = 15,    /* the pool's mode forbids it (free in an arena) */
  SLAB_E_STALE = 64,            /* the key names no live value (freed, or never valid) */
  SLAB_E_INTERNAL = 65          /* an unexpected failure inside the library */
};

typedef struct slab_pool_stats {
  char name[64];        /* NUL-terminated */
  uint32_t slot_size;   /* payload bytes per slot */
  uint32_t tiers;       /* tiers published so far */
  uint64_t ready_slots; /* slots shmd has prepared and offered */
  uint64_t max_slots;   /* the ceiling for growth */
  uint64_t live;        /* allocations minus frees, all processes (approximate while busy) */
  int hugepages;        /* 1: every tier's data on hugepages */
  int fell_back;        /* 1: hugepages = "prefer" fell back to normal pages somewhere */
  int arena;            /* 1: mode = "arena" (slab_free refused) */
} slab_pool_stats;

/* Connects to shmd at socket_path, or (NULL) at $SHMD_SOCKET, else /run/shmd/shmd.sock. */
int slab_attach(const char* socket_path, slab_client** out);
/* Drops the connection once no pool opened through it is open. NULL is ignored. */
void slab_detach(slab_client* c);

/* Attaches a new context of pool `name` for values of `size` bytes aligned to `align`
 * (a power of two). SLAB_E_NOT_FOUND, SLAB_E_TYPE_MISMATCH, SLAB_E_EXHAUSTED (every
 * context attached), SLAB_E_NO_DAEMON. */
int slab_open(slab_client* c, const char* name, size_t size, size_t align, slab_pool** out);
/* Gives the context back to shmd (its cached free slots return to the pool; values
 * stay). NULL is ignored. */
void slab_close(slab_pool* p);

/* Takes a free slot: its key in *key, its (uninitialised) payload in *payload (may be
 * NULL if not wanted). Waits up to 500 ms for shmd to grow the pool, then
 * SLAB_E_EXHAUSTED. */
int slab_alloc(slab_pool* p, slab_key* key, void** payload);
/* The payload of a live key, or NULL when it is stale, out of range or 0. */
void* slab_get(slab_pool* p, slab_key key);
/* Frees a live key's slot. SLAB_E_STALE when it is not live (of racing frees in any
 * processes, exactly one succeeds); SLAB_E_NOT_SUPPORTED in an arena pool. */
int slab_free(slab_pool* p, slab_key key);
/* Copies the first `size` bytes of a live key's payload into *out and frees its slot,
 * in one step (what a consumer does with a value it was handed; across processes the
 * payload's and the header's lines travel together). Errors as slab_free's, and
 * SLAB_E_INVALID_ARGUMENT when out is NULL or size exceeds the pool's slot size;
 * nothing is copied unless the key was live and this call freed it. */
int slab_take(slab_pool* p, slab_key key, void* out, size_t size);
/* What the pool looks like, read from shared memory (no round trip to shmd). */
int slab_stats(const slab_pool* p, slab_pool_stats* out);

/* A short stable description of a code ("no free slot ..."); never NULL. */
const char* slab_strerror(int code);
/* The message of this thread's last failing call ("" if none yet); never NULL. */
const char* slab_last_error(void);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* SLAB_SLAB_H */
