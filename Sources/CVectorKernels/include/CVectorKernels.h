// Distance kernels with runtime CPU dispatch, prefetch, and atomics on raw memory for VectorIndex.
// Plain C; every function here is safe to call from any thread.
#ifndef SHOAL_CVECTORKERNELS_H
#define SHOAL_CVECTORKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// A distance kernel over `n` floats. Smaller is nearer for l2sq; the dot kernel returns the dot product.
typedef float (*shoal_dist_fn)(const float *a, const float *b, size_t n);

float shoal_l2sq_scalar(const float *a, const float *b, size_t n);
float shoal_dot_scalar(const float *a, const float *b, size_t n);
/// AVX2+FMA versions; call only when `shoal_cpu_has_avx2_fma()` is nonzero.
float shoal_l2sq_avx2(const float *a, const float *b, size_t n);
float shoal_dot_avx2(const float *a, const float *b, size_t n);

/// Integer dot product of two int8 rows with values in [-127, 127]; `n` a multiple of 32 (zero padded).
typedef int32_t (*shoal_dot_i8i8_fn)(const int8_t *a, const int8_t *b, size_t n);
int32_t shoal_dot_i8i8_scalar(const int8_t *a, const int8_t *b, size_t n);
int32_t shoal_dot_i8i8_avx2(const int8_t *a, const int8_t *b, size_t n);
shoal_dot_i8i8_fn shoal_select_dot_i8i8(int allow_simd);

/// Approximate distances of one quantised query to `count` consecutive code rows (`stride` bytes apart;
/// each row: `len` int8 codes, then its scale and squared norm as floats). With `l2`:
/// q_norm + norm − 2·dot, else bias − dot, where dot = int_dot × q_scale × scale.
void shoal_scan_codes(const int8_t *q, float q_scale, float q_norm, const int8_t *rows, size_t stride, size_t len,
                      size_t count, int l2, float bias, float *out, int allow_simd);

/// Nonzero when the CPU (and OS) support AVX2 and FMA.
int shoal_cpu_has_avx2_fma(void);

/// The best kernel for this CPU, or the scalar one when `allow_simd` is 0.
/// kind: 0 = squared L2, 1 = dot product.
shoal_dist_fn shoal_select_kernel(int kind, int allow_simd);

/// Reserve `bytes` of zeroed, 64-byte aligned address space; pages are committed on first touch.
/// Returns NULL on failure. Release with `shoal_unreserve`.
void *shoal_reserve(size_t bytes);
void shoal_unreserve(void *p, size_t bytes);

/// Gives the CPU to another thread (sched_yield).
void shoal_yield(void);

/// A heap-allocated pthread mutex (visible to the thread sanitizer, unlike a raw futex).
typedef struct shoal_mutex shoal_mutex;
shoal_mutex *shoal_mutex_create(void);
void shoal_mutex_destroy(shoal_mutex *m);
void shoal_mutex_lock(shoal_mutex *m);
void shoal_mutex_unlock(shoal_mutex *m);

static inline void shoal_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

static inline uint32_t shoal_load_acquire_u32(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void shoal_store_release_u32(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint8_t shoal_load_acquire_u8(const uint8_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void shoal_store_release_u8(uint8_t *p, uint8_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }
static inline uint64_t shoal_load_acquire_u64(const uint64_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void shoal_store_release_u64(uint64_t *p, uint64_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/// A one-word spin lock (0 = free). Critical sections guarded by it are short (one neighbour list).
static inline void shoal_spin_lock(uint32_t *p) {
    for (;;) {
        if (__atomic_exchange_n(p, 1u, __ATOMIC_ACQUIRE) == 0u) return;
        unsigned spins = 0;
        while (__atomic_load_n(p, __ATOMIC_RELAXED) != 0u) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
            if (++spins > 1024u) { shoal_yield(); spins = 0; }
        }
    }
}
static inline void shoal_spin_unlock(uint32_t *p) { __atomic_store_n(p, 0u, __ATOMIC_RELEASE); }

#ifdef __cplusplus
}
#endif
#endif
