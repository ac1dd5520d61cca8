#include "CVectorKernels.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

float shoal_l2sq_scalar(const float *a, const float *b, size_t n) {
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}

float shoal_dot_scalar(const float *a, const float *b, size_t n) {
    float s = 0.0f;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

int32_t shoal_dot_i8i8_scalar(const int8_t *a, const int8_t *b, size_t n) {
    int32_t s = 0;
    for (size_t i = 0; i < n; i++) s += (int32_t)a[i] * (int32_t)b[i];
    return s;
}

#if defined(__x86_64__)
/* maddubs multiplies unsigned by signed bytes: use |a| and b carrying a's sign. Pairs stay below 2^15
   because codes are within [-127, 127]. */
__attribute__((target("avx2,fma"))) int32_t shoal_dot_i8i8_avx2(const int8_t *a, const int8_t *b, size_t n) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i acc0 = _mm256_setzero_si256(), acc1 = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(a + i)), y0 = _mm256_loadu_si256((const __m256i *)(b + i));
        __m256i x1 = _mm256_loadu_si256((const __m256i *)(a + i + 32)), y1 = _mm256_loadu_si256((const __m256i *)(b + i + 32));
        __m256i p0 = _mm256_maddubs_epi16(_mm256_abs_epi8(x0), _mm256_sign_epi8(y0, x0));
        __m256i p1 = _mm256_maddubs_epi16(_mm256_abs_epi8(x1), _mm256_sign_epi8(y1, x1));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p0, ones));
        acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(p1, ones));
    }
    for (; i + 32 <= n; i += 32) {
        __m256i x0 = _mm256_loadu_si256((const __m256i *)(a + i)), y0 = _mm256_loadu_si256((const __m256i *)(b + i));
        __m256i p0 = _mm256_maddubs_epi16(_mm256_abs_epi8(x0), _mm256_sign_epi8(y0, x0));
        acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(p0, ones));
    }
    __m256i acc = _mm256_add_epi32(acc0, acc1);
    __m128i t = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0x4E));
    t = _mm_add_epi32(t, _mm_shuffle_epi32(t, 0xB1));
    int32_t s = _mm_cvtsi128_si32(t);
    for (; i < n; i++) s += (int32_t)a[i] * (int32_t)b[i];
    return s;
}

__attribute__((target("avx2,fma"))) static inline float hsum256(__m256 v) {
    __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
    lo = _mm_add_ps(lo, hi);
    lo = _mm_add_ps(lo, _mm_movehl_ps(lo, lo));
    lo = _mm_add_ss(lo, _mm_movehdup_ps(lo));
    return _mm_cvtss_f32(lo);
}

__attribute__((target("avx2,fma"))) float shoal_l2sq_avx2(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256 d0 = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        __m256 d1 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8));
        __m256 d2 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16));
        __m256 d3 = _mm256_sub_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        s2 = _mm256_fmadd_ps(d2, d2, s2);
        s3 = _mm256_fmadd_ps(d3, d3, s3);
    }
    for (; i + 8 <= n; i += 8) {
        __m256 d = _mm256_sub_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));
        s0 = _mm256_fmadd_ps(d, d, s0);
    }
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) {
        float d = a[i] - b[i];
        s += d * d;
    }
    return s;
}

__attribute__((target("avx2,fma"))) float shoal_dot_avx2(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps(), s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
        s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
        s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
    }
    for (; i + 8 <= n; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    float s = hsum256(_mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3)));
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

int shoal_cpu_has_avx2_fma(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#else
int32_t shoal_dot_i8i8_avx2(const int8_t *a, const int8_t *b, size_t n) { return shoal_dot_i8i8_scalar(a, b, n); }
float shoal_l2sq_avx2(const float *a, const float *b, size_t n) { return shoal_l2sq_scalar(a, b, n); }
float shoal_dot_avx2(const float *a, const float *b, size_t n) { return shoal_dot_scalar(a, b, n); }
int shoal_cpu_has_avx2_fma(void) { return 0; }
#endif

shoal_dist_fn shoal_select_kernel(int kind, int allow_simd) {
    int simd = allow_simd && shoal_cpu_has_avx2_fma();
    if (kind == 0) return simd ? shoal_l2sq_avx2 : shoal_l2sq_scalar;
    return simd ? shoal_dot_avx2 : shoal_dot_scalar;
}

shoal_dot_i8i8_fn shoal_select_dot_i8i8(int allow_simd) {
    return allow_simd && shoal_cpu_has_avx2_fma() ? shoal_dot_i8i8_avx2 : shoal_dot_i8i8_scalar;
}

#if defined(__x86_64__)
__attribute__((target("avx2,fma"))) static void scan_codes_avx2(const int8_t *q, float q_scale, float q_norm,
                                                              const int8_t *rows, size_t stride, size_t len, size_t count,
                                                              int l2, float bias, float *out) {
    for (size_t i = 0; i < count; i++) {
        const int8_t *row = rows + i * stride;
        float meta[2];
        __builtin_memcpy(meta, row + len, sizeof meta);
        float d = (float)shoal_dot_i8i8_avx2(q, row, len) * q_scale * meta[0];
        out[i] = l2 ? q_norm + meta[1] - 2.0f * d : bias - d;
    }
}
#endif

void shoal_scan_codes(const int8_t *q, float q_scale, float q_norm, const int8_t *rows, size_t stride, size_t len,
                      size_t count, int l2, float bias, float *out, int allow_simd) {
#if defined(__x86_64__)
    if (allow_simd && shoal_cpu_has_avx2_fma()) {
        scan_codes_avx2(q, q_scale, q_norm, rows, stride, len, count, l2, bias, out);
        return;
    }
#endif
    for (size_t i = 0; i < count; i++) {
        const int8_t *row = rows + i * stride;
        float meta[2];
        __builtin_memcpy(meta, row + len, sizeof meta);
        float d = (float)shoal_dot_i8i8_scalar(q, row, len) * q_scale * meta[0];
        out[i] = l2 ? q_norm + meta[1] - 2.0f * d : bias - d;
    }
}

void *shoal_reserve(size_t bytes) {
    if (bytes == 0) bytes = 4096;
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void shoal_unreserve(void *p, size_t bytes) {
    if (p) munmap(p, bytes == 0 ? 4096 : bytes);
}

void shoal_yield(void) { sched_yield(); }

struct shoal_mutex { pthread_mutex_t m; };

shoal_mutex *shoal_mutex_create(void) {
    shoal_mutex *m = malloc(sizeof *m);
    if (m) pthread_mutex_init(&m->m, NULL);
    return m;
}
void shoal_mutex_destroy(shoal_mutex *m) {
    if (!m) return;
    pthread_mutex_destroy(&m->m);
    free(m);
}
void shoal_mutex_lock(shoal_mutex *m) { pthread_mutex_lock(&m->m); }
void shoal_mutex_unlock(shoal_mutex *m) { pthread_mutex_unlock(&m->m); }
