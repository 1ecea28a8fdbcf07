/* Allocation through one door, so that the test build can fail any allocation on purpose.
 *
 * Library code allocates with po__malloc / po__calloc / po__realloc / po__strdup /
 * po__aligned_alloc and frees with free(); memory it maps itself asks po__fault_point() first. In
 * the shipped library these are the libc functions. In the test build (PERFOPT_TESTING) they go
 * through a countdown in the manner of SQLite's fault injection: po__fault_fail_at(n) makes the
 * n-th allocation from now fail (and, when `persist` is set, every one after it), so a test can
 * loop a constructor over every allocation point and check that each failure is an error, never a
 * crash or a leak. cJSON's allocations go through the same door (the test support installs hooks),
 * so the report builder is covered too. */
#ifndef PO__ALLOC_H
#define PO__ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef PERFOPT_TESTING
void *po__test_malloc(size_t n);
void *po__test_calloc(size_t n, size_t size);
void *po__test_realloc(void *p, size_t n);
char *po__test_strdup(const char *s);
void *po__test_aligned_alloc(size_t align, size_t n);
/* 1 when the allocation about to be made (by other means, e.g. mmap) must fail. */
int po__test_fault_point(void);
/* Arms the countdown: the n-th allocation from now fails (n >= 1); persist: all later ones too.
 * n = 0 disarms. */
void po__fault_fail_at(uint64_t n, int persist);
/* Allocations that went through the door since the last arm, and failures injected. */
uint64_t po__fault_count(void);
uint64_t po__fault_injected(void);
#define po__malloc(n) po__test_malloc(n)
#define po__calloc(n, s) po__test_calloc((n), (s))
#define po__realloc(p, n) po__test_realloc((p), (n))
#define po__strdup(s) po__test_strdup(s)
#define po__aligned_alloc(a, n) po__test_aligned_alloc((a), (n))
#define po__fault_point() po__test_fault_point()
#else
#define po__malloc(n) malloc(n)
#define po__calloc(n, s) calloc((n), (s))
#define po__realloc(p, n) realloc((p), (n))
#define po__strdup(s) strdup(s)
#define po__aligned_alloc(a, n) aligned_alloc((a), (n))
#define po__fault_point() 0
#endif

#endif
