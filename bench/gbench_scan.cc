// SPDX-License-Identifier: MIT
// gbench_scan.cc — google-benchmark shim over the public C API of
// bitmap/sl_bitmap.h: the cases of `sluice bench scan` (patterns empty,
// random0.1, random10, random50, runs32, full; 64 and 512 GiB guests) for
// the engine's scan, the word-run baseline and the OR-reduction floor.
// Each scan fills a 4096-range buffer and resumes through its cursor.
//
//   build/bench/gbench_scan --benchmark_format=json
//   meson test -C build --benchmark
#include <benchmark/benchmark.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <utility>
#include <vector>

#include "sl_bitmap.h"

namespace {

const char *const kPatterns[] = {"empty", "random0.1", "random10", "random50", "runs32", "full"};
constexpr size_t kBatch = 4096;

uint64_t rng_state = 0x243f6a8885a308d3ull;

uint64_t Rnd()
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

// Same generators as the CLI benchmark (engine/cli/cmd_bench_scan.c).
std::vector<uint64_t> MakeBitmap(int pattern, uint64_t npages)
{
	std::vector<uint64_t> w(sl_bitmap_words(npages), 0);

	switch (pattern) {
	case 1:
		for (uint64_t i = 0; i < npages / 1000; i++) {
			uint64_t b = Rnd() % npages;
			w[b / 64] |= 1ull << (b % 64);
		}
		break;
	case 2:
		for (auto &x : w) {
			uint64_t v = 0;
			for (int b = 0; b < 64; b += 4) {
				uint64_t r = Rnd();
				for (int q = 0; q < 4; q++)
					v |= uint64_t(((r >> (16 * q)) & 0xffff) < 6554) << (b + q);
			}
			x = v;
		}
		break;
	case 3:
		for (auto &x : w)
			x = Rnd();
		break;
	case 4:
		for (uint64_t i = 0; i < npages / 320; i++)
			sl_bitmap_set_range(w.data(), npages, Rnd() % (npages - 32), 32);
		break;
	case 5:
		std::memset(w.data(), 0xff, w.size() * 8);
		break;
	default:
		break;
	}
	return w;
}

// Bitmaps are generated once per (pattern, size) and shared by the cases.
const std::vector<uint64_t> &Bitmap(int pattern, uint64_t gib)
{
	static std::map<std::pair<int, uint64_t>, std::vector<uint64_t>> cache;
	auto key = std::make_pair(pattern, gib);
	auto it = cache.find(key);

	if (it == cache.end())
		it = cache.emplace(key, MakeBitmap(pattern, gib << 18)).first;
	return it->second;
}

template <bool kWordrun>
void BM_Scan(benchmark::State &state)
{
	const int pattern = static_cast<int>(state.range(0));
	const uint64_t gib = static_cast<uint64_t>(state.range(1)), npages = gib << 18;
	const auto &w = Bitmap(pattern, gib);
	std::vector<sl_range> out(kBatch);
	uint64_t ranges = 0;

	state.SetLabel(std::string(kPatterns[pattern]) + "/" + std::to_string(gib) + "GiB/" +
		       sl_isa_name(sl_bitmap_isa()));
	for (auto _ : state) {
		sl_scan_cursor c;

		ranges = 0;
		sl_scan_cursor_init(&c);
		while (!sl_scan_cursor_done(&c)) {
			ssize_t n = kWordrun
				? sl_bitmap_scan_wordrun(w.data(), npages, 0, &c, out.data(), kBatch)
				: sl_bitmap_scan(w.data(), npages, 0, nullptr, &c, out.data(), kBatch);
			if (n < 0) {
				state.SkipWithError("scan failed");
				return;
			}
			ranges += static_cast<uint64_t>(n);
		}
		benchmark::DoNotOptimize(out.data());
		benchmark::ClobberMemory();
	}
	state.counters["ranges"] = static_cast<double>(ranges);
	if (ranges)
		state.counters["ns_per_range"] = benchmark::Counter(
			static_cast<double>(ranges) * static_cast<double>(state.iterations()),
			benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.size() * 8));
}

void BM_Floor(benchmark::State &state)
{
	const int pattern = static_cast<int>(state.range(0));
	const uint64_t gib = static_cast<uint64_t>(state.range(1));
	const auto &w = Bitmap(pattern, gib);

	state.SetLabel(std::string(kPatterns[pattern]) + "/" + std::to_string(gib) + "GiB");
	for (auto _ : state)
		benchmark::DoNotOptimize(sl_bitmap_floor_or(w.data(), w.size()));
	state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * w.size() * 8));
}

void Cases(benchmark::internal::Benchmark *b)
{
	for (int64_t gib : {64, 512})
		for (int64_t p = 0; p < 6; p++)
			b->Args({p, gib});
	b->ArgNames({"pattern", "gib"})->Unit(benchmark::kMillisecond)->MinTime(0.05);
}

} // namespace

BENCHMARK(BM_Floor)->Apply(Cases);
BENCHMARK_TEMPLATE(BM_Scan, false)->Name("BM_Scan")->Apply(Cases);
BENCHMARK_TEMPLATE(BM_Scan, true)->Name("BM_Wordrun")->Apply(Cases);

BENCHMARK_MAIN();
