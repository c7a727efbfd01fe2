/* SPDX-License-Identifier: MIT */
/*
 * bitmap_dispatch.c — run-time choice of the SIMD path (cpuid via
 * __builtin_cpu_supports), overridable with SL_BITMAP_ISA or
 * sl_bitmap_force_isa() so tests can run every path the CPU has.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "bitmap_internal.h"
#include "sl_common.h"

static const struct sl_bitmap_impl impl_scalar = {
	.isa = SL_ISA_SCALAR,
	.kernel = sl_bitmap_kernel_scalar,
	.count = sl_bitmap_count_scalar,
};

#ifdef SL_BITMAP_HAVE_X86
static const struct sl_bitmap_impl impl_avx2 = {
	.isa = SL_ISA_AVX2,
	.kernel = sl_bitmap_kernel_avx2,
	.count = sl_bitmap_count_avx2,
};

static const struct sl_bitmap_impl impl_avx512 = {
	.isa = SL_ISA_AVX512,
	.kernel = sl_bitmap_kernel_avx512,
	.count = sl_bitmap_count_avx2, /* POPCNT either way; AVX-512 adds nothing to a count */
};
#endif

/* Written once on first use (every racing writer stores the same value) and
 * by sl_bitmap_force_isa(). */
static _Atomic(const struct sl_bitmap_impl *) current;

SL_EXPORT bool sl_bitmap_isa_supported(enum sl_isa isa)
{
	switch (isa) {
	case SL_ISA_SCALAR:
		return true;
#ifdef SL_BITMAP_HAVE_X86
	case SL_ISA_AVX2:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
		       __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
	case SL_ISA_AVX512:
		/* libgcc also checks (xgetbv) that the OS saves ZMM state. */
		return sl_bitmap_isa_supported(SL_ISA_AVX2) && __builtin_cpu_supports("avx512f");
#endif
	default:
		return false;
	}
}

static const struct sl_bitmap_impl *impl_of(enum sl_isa isa)
{
	switch (isa) {
#ifdef SL_BITMAP_HAVE_X86
	case SL_ISA_AVX2:
		return &impl_avx2;
	case SL_ISA_AVX512:
		return &impl_avx512;
#endif
	default:
		return &impl_scalar;
	}
}

static int isa_from_name(const char *s, enum sl_isa *out)
{
	static const enum sl_isa all[] = { SL_ISA_SCALAR, SL_ISA_AVX2, SL_ISA_AVX512 };

	for (size_t i = 0; i < SL_ARRAY_SIZE(all); i++) {
		if (!strcmp(s, sl_isa_name(all[i]))) {
			*out = all[i];
			return 0;
		}
	}
	return -EINVAL;
}

static const struct sl_bitmap_impl *pick(void)
{
	const char *env = getenv("SL_BITMAP_ISA");
	enum sl_isa isa;

	if (env && !isa_from_name(env, &isa) && sl_bitmap_isa_supported(isa))
		return impl_of(isa);
	if (sl_bitmap_isa_supported(SL_ISA_AVX512))
		return impl_of(SL_ISA_AVX512);
	if (sl_bitmap_isa_supported(SL_ISA_AVX2))
		return impl_of(SL_ISA_AVX2);
	return &impl_scalar;
}

const struct sl_bitmap_impl *sl_bitmap_impl(void)
{
	const struct sl_bitmap_impl *p = atomic_load_explicit(&current, memory_order_acquire);

	if (SL_UNLIKELY(!p)) {
		p = pick();
		atomic_store_explicit(&current, p, memory_order_release);
	}
	return p;
}

SL_EXPORT enum sl_isa sl_bitmap_isa(void)
{
	return sl_bitmap_impl()->isa;
}

SL_EXPORT int sl_bitmap_force_isa(enum sl_isa isa)
{
	if (isa != SL_ISA_SCALAR && isa != SL_ISA_AVX2 && isa != SL_ISA_AVX512)
		return -EINVAL;
	if (!sl_bitmap_isa_supported(isa))
		return -ENOTSUP;
	atomic_store_explicit(&current, impl_of(isa), memory_order_release);
	return 0;
}

SL_EXPORT const char *sl_isa_name(enum sl_isa isa)
{
	switch (isa) {
	case SL_ISA_SCALAR: return "scalar";
	case SL_ISA_AVX2: return "avx2";
	case SL_ISA_AVX512: return "avx512";
	}
	return "unknown";
}

SL_EXPORT uint64_t sl_bitmap_floor_or(const uint64_t *words, uint64_t nwords)
{
	uint64_t r = 0;

	if (!words)
		return 0;
#ifdef SL_BITMAP_HAVE_X86
	if (sl_bitmap_isa_supported(SL_ISA_AVX2))
		return sl_bitmap_floor_or_avx2(words, nwords);
#endif
	for (uint64_t i = 0; i < nwords; i++)
		r |= words[i];
	return r;
}
