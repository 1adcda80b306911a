// The index, partition and chunk logic of the CUDA kernels (csrc/cuda/launch_plan.h), run on the
// CPU: every kernel walk is replayed thread by thread over edge-case shapes, and each check
// asserts that every element is visited exactly once and that every 128-bit access is aligned.
// Needs no GPU and no CUDA toolkit: a logic error here fails CI on any machine.
//
// Prints one line per failed check and ends with "N passed, M failed"; exits non-zero on any
// failure.
#include "cuda/launch_plan.h"

#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>
#include <string>
#include <vector>

namespace {

using namespace gankernels::cuda;

int g_passed = 0;
int g_failed = 0;

void check(bool ok, const std::string& what) {
  if (ok) {
    ++g_passed;
  } else {
    ++g_failed;
    std::printf("FAIL  %s\n", what.c_str());
  }
}

std::string str(int64_t v) { return std::to_string(v); }

// Visit counts of one walk, and whether each vector access was aligned and in bounds.
struct Visits {
  std::vector<int> count;
  bool misaligned = false;
  bool out_of_range = false;

  explicit Visits(int64_t n) : count(static_cast<size_t>(n), 0) {}

  void scalar(int64_t k) {
    if (k < 0 || k >= static_cast<int64_t>(count.size())) {
      out_of_range = true;
      return;
    }
    ++count[k];
  }
  // A pack of V elements at k, in an array whose element 0 has pack phase `phase`.
  void pack(int64_t k, int V, int phase) {
    if (phase < 0 || (phase + k) % V != 0) misaligned = true;
    for (int j = 0; j < V; ++j) scalar(k + j);
  }
  bool exactly_once(int64_t begin, int64_t end) const {
    for (int64_t k = 0; k < static_cast<int64_t>(count.size()); ++k) {
      const int want = (k >= begin && k < end) ? 1 : 0;
      if (count[k] != want) return false;
    }
    return !out_of_range;
  }
};

// ---- packs ------------------------------------------------------------------------------------

void test_pack_phase() {
  // float32 at an address 4 bytes past a 16-byte boundary: element 3 is the first aligned one.
  check(pack_phase(0x1000, 4) == 0 && pack_phase(0x1004, 4) == 1 && pack_phase(0x100c, 4) == 3,
        "pack_phase float32");
  check(pack_phase(0x1002, 2) == 1 && pack_phase(0x100e, 2) == 7, "pack_phase 16-bit");
  check(pack_phase(0x1008, 8) == 1, "pack_phase float64");
  check(pack_phase(0x1002, 4) == -1 && pack_phase(0x1004, 8) == -1,
        "pack_phase: an address that is not a multiple of the element size has no packs");
  check(common_phase(1, 1) == 1 && common_phase(1, 2) == -1 && common_phase(0, 0, 0) == 0 &&
            common_phase(0, 0, 3) == -1 && common_phase(-1, -1) == -1,
        "common_phase");
  for (int V : {2, 4, 8}) {
    for (int phase = -1; phase < V; ++phase) {
      for (int64_t start : {0, 1, 3, 7, 8, 13}) {
        for (int64_t len : {0, 1, 2, 7, 8, 9, 31, 100}) {
          const PackSplit s = pack_split(start, start + len, V, phase);
          const bool ordered = start <= s.vbeg && s.vbeg <= s.vend && s.vend <= start + len;
          const bool whole = (s.vend - s.vbeg) % V == 0;
          const bool aligned = s.vbeg == s.vend || (phase >= 0 && (phase + s.vbeg) % V == 0);
          // The head is shorter than a pack, and so is the tail when there is any pack.
          const bool short_edges =
              s.vbeg - start < V && (s.vbeg == s.vend || start + len - s.vend < V);
          check(ordered && whole && aligned && short_edges,
                "pack_split V=" + str(V) + " phase=" + str(phase) + " start=" + str(start) +
                    " len=" + str(len));
        }
      }
    }
  }
}

// for_range over [start, end) by `team` lanes, replayed lane by lane.
template <int V, int Unroll>
void check_for_range(int64_t start, int64_t end, int64_t team, int phase) {
  Visits v(end + 16);
  for (int64_t lane = 0; lane < team; ++lane) {
    for_range<V, Unroll>(
        start, end, lane, team, phase, [&](int64_t k) { v.pack(k, V, phase); },
        [&](int64_t k) { v.scalar(k); });
  }
  check(v.exactly_once(start, end) && !v.misaligned,
        "for_range V=" + str(V) + " unroll=" + str(Unroll) + " [" + str(start) + ", " + str(end) +
            ") team=" + str(team) + " phase=" + str(phase));
}

void test_for_range() {
  for (int64_t team : {1, 3, 32, 256}) {
    for (int64_t start : {0, 1, 5}) {
      for (int64_t len : {0, 1, 7, 513, 1001, 8191}) {
        for (int phase = -1; phase < 8; ++phase) {
          if (phase < 4) check_for_range<4, 4>(start, start + len, team, phase);
          if (phase < 4) check_for_range<4, 2>(start, start + len, team, phase);
          check_for_range<8, 4>(start, start + len, team, phase);
          if (phase < 2) check_for_range<2, 1>(start, start + len, team, phase);
        }
      }
    }
  }
}

// ---- sample indices ---------------------------------------------------------------------------

void test_divider() {
  std::mt19937_64 rng(0);
  std::vector<int64_t> divisors = {1,
                                   2,
                                   3,
                                   5,
                                   7,
                                   512,
                                   513,
                                   784,
                                   1001,
                                   8191,
                                   12288,
                                   65536,
                                   (int64_t{1} << 31) - 1,
                                   int64_t{1} << 31,
                                   (int64_t{1} << 32) + 1,
                                   (int64_t{1} << 62) + 12345};
  for (int i = 0; i < 40; ++i) divisors.push_back(1 + static_cast<int64_t>(rng() >> (1 + i % 62)));
  for (int64_t d : divisors) {
    const Divider div(d);
    bool ok = true;
    std::vector<int64_t> ns = {0, 1, d - 1, d, d + 1, 2 * d - 1, INT64_MAX, INT64_MAX - 1};
    for (int i = 0; i < 200; ++i) ns.push_back(static_cast<int64_t>(rng() >> 1));
    for (int i = 0; i < 50; ++i) ns.push_back(static_cast<int64_t>(rng() % 4096) * d + i % 3);
    for (int64_t n : ns) {
      if (n < 0) continue;
      ok = ok && div.div(n) == n / d;
    }
    check(ok, "Divider d=" + str(d));
  }
}

// The sample of every element of every pack of a batch-major buffer, as the elementwise kernels
// compute it (SampleCursor at the pack's start, one step per element).
void test_sample_cursor() {
  for (int64_t N : {1, 2, 3, 4, 7, 8, 9, 513, 1001}) {
    const Divider div(N);
    for (int V : {2, 4, 8}) {
      bool ok = true;
      for (int64_t k = 0; k < 64 * N && ok; k += V) {
        SampleCursor cur(k, div);
        int64_t prev = cur.i;
        for (int j = 0; j < V; ++j) {
          const bool crossed = cur.step(div);
          ok = ok && cur.i == (k + j) / N && crossed == (j > 0 && cur.i != prev);
          prev = cur.i;
        }
      }
      check(ok, "SampleCursor N=" + str(N) + " V=" + str(V));
    }
  }
}

// ---- per-sample reductions --------------------------------------------------------------------

// Replays a per-sample kernel's walk: team mode (team_walk, for_range per sample, every lane of a
// warp running the same trips) or split mode (split_chunk, for_range per chunk). Every element
// of every sample must be visited exactly once, by the thread set that owns its sample.
void check_sample_walk(int64_t B, int64_t N, int V, int64_t resident, int phase) {
  const SamplePlan plan = plan_samples(B, N, V, resident);
  const std::string what = "plan_samples B=" + str(B) + " N=" + str(N) + " V=" + str(V) +
                           " resident=" + str(resident) + " phase=" + str(phase);
  bool ok = plan.grid >= 1 && plan.grid <= std::max<int64_t>(resident, 1) && plan.P >= 1;
  if (plan.split()) {
    ok = ok && plan.team == kBlock && plan.chunk % V == 0 && plan.chunk > 0 &&
         plan.P * plan.chunk >= N && (plan.P - 1) * plan.chunk < N;
  } else {
    ok = ok && plan.team >= 1 && plan.team <= kWarp && (plan.team & (plan.team - 1)) == 0 &&
         plan.P == 1;
  }
  check(ok, what + ": plan");
  if (!ok) return;

  Visits v(B * N);
  bool owner_ok = true, warp_uniform = true;
  auto walk = [&](int64_t start, int64_t end, int64_t lane, int64_t team, int64_t sample) {
    if (V == 2) {
      for_range<2, 4>(
          start, end, lane, team, phase, [&](int64_t k) { v.pack(k, 2, phase); },
          [&](int64_t k) { v.scalar(k); });
    } else if (V == 4) {
      for_range<4, 4>(
          start, end, lane, team, phase, [&](int64_t k) { v.pack(k, 4, phase); },
          [&](int64_t k) { v.scalar(k); });
    } else {
      for_range<8, 4>(
          start, end, lane, team, phase, [&](int64_t k) { v.pack(k, 8, phase); },
          [&](int64_t k) { v.scalar(k); });
    }
    owner_ok = owner_ok && start >= sample * N && end <= (sample + 1) * N;
  };
  if (!plan.split()) {
    for (int64_t block = 0; block < plan.grid; ++block) {
      for (int warp = 0; warp < kBlock / kWarp; ++warp) {
        std::vector<int64_t> trips;
        for (int lane32 = 0; lane32 < kWarp; ++lane32) {
          const int thread = warp * kWarp + lane32;
          const TeamWalk t = team_walk(block, plan.grid, thread, plan.team);
          int64_t n = 0;
          for (int64_t i = t.first, w = t.warp_first; w < B; i += t.stride, w += t.stride, ++n) {
            if (i < B) walk(i * N, (i + 1) * N, t.lane, plan.team, i);
          }
          trips.push_back(n);
        }
        for (int64_t n : trips) warp_uniform = warp_uniform && n == trips[0];
      }
    }
  } else {
    const Divider P(plan.P);
    for (int64_t block = 0; block < plan.grid; ++block) {
      for (int64_t u = block; u < B * plan.P; u += plan.grid) {
        const SplitChunk c = split_chunk(u, P, plan.chunk, N);
        owner_ok = owner_ok && c.i == u / plan.P && c.p == u % plan.P && c.start < c.end;
        for (int64_t thread = 0; thread < kBlock; ++thread) {
          walk(c.start, c.end, thread, kBlock, c.i);
        }
      }
    }
  }
  check(v.exactly_once(0, B * N) && !v.misaligned && owner_ok && warp_uniform,
        what + (plan.split() ? " (split)" : " (team " + str(plan.team) + ")"));
}

void test_plan_samples() {
  // 132 SMs x 4 or 6 resident blocks (H100, H200 at the kernels' occupancies), and tiny GPUs.
  for (int64_t resident : {1, 8, 528, 792}) {
    for (int64_t B : {1, 7, 64}) {
      for (int64_t N : {1, 513, 1001, 8191, 12288}) {
        for (int V : {2, 4, 8}) {
          for (int phase : {0, 1, -1}) {
            if (phase >= V) continue;
            check_sample_walk(B, N, V, resident, phase);
          }
        }
      }
    }
  }
  // Many samples: a warp per sample, never a block looping over all of them.
  check_sample_walk(65536, 7, 4, 792, 0);
  check_sample_walk(65536, 1, 8, 528, 0);
  check_sample_walk(7000, 784, 4, 792, 0);
  const SamplePlan wide = plan_samples(65536, 784, 4, 792);
  check(!wide.split(), "plan_samples: B = 65536, N = 784 takes team mode");
  const SamplePlan big = plan_samples(2, 1000003, 4, 792);
  check(big.split() && big.P > 1 && big.grid <= 792, "plan_samples: B = 2, N = 1e6 is split");
  check_sample_walk(2, 100003, 4, 792, 1);
  check_sample_walk(3, 400001, 8, 528, 0);
}

// ---- clip_ launches ---------------------------------------------------------------------------

void check_clip_launches(const std::vector<int64_t>& numel, int64_t chunk, int max_tensors,
                         int max_blocks, const std::string& what) {
  const auto launches = plan_clip_launches(numel, chunk, max_tensors, max_blocks);
  std::vector<Visits> visits;
  for (int64_t n : numel) visits.emplace_back(n);
  bool ok = true;
  for (size_t l = 0; l < launches.size(); ++l) {
    const ClipLaunch& launch = launches[l];
    ok = ok && !launch.tensors.empty() && !launch.block_slot.empty();
    ok = ok && static_cast<int>(launch.tensors.size()) <= max_tensors;
    ok = ok && static_cast<int>(launch.block_slot.size()) <= max_blocks;
    ok = ok && launch.block_slot.size() == launch.block_chunk.size();
    for (int t : launch.tensors) ok = ok && numel[t] > 0;  // an empty tensor takes no slot
    for (size_t b = 0; b < launch.block_slot.size() && ok; ++b) {
      const int slot = launch.block_slot[b];
      ok = slot >= 0 && slot < static_cast<int>(launch.tensors.size());
      if (!ok) break;
      const int t = launch.tensors[slot];
      const int64_t begin = launch.block_chunk[b] * chunk;
      const int64_t n = std::min(chunk, numel[t] - begin);
      ok = n > 0;
      // The kernel walks its chunk with for_range from a (possibly unaligned) base: replay it
      // with the phases an unaligned float32 tensor would have.
      const int phase = static_cast<int>((t + begin) % 4);
      for (int64_t lane = 0; lane < 512 && ok; ++lane) {
        for_range<4>(
            begin, begin + n, lane, 512, phase, [&](int64_t k) { visits[t].pack(k, 4, phase); },
            [&](int64_t k) { visits[t].scalar(k); });
      }
    }
    // A tensor carried into this launch sits in slot 0 and continues where the last one left.
    if (l > 0 && ok) {
      const ClipLaunch& prev = launches[l - 1];
      if (prev.tensors.back() == launch.tensors.front()) {
        ok = prev.block_chunk.back() + 1 == launch.block_chunk.front();
      }
    }
  }
  for (size_t t = 0; t < numel.size() && ok; ++t) {
    ok = visits[t].exactly_once(0, numel[t]) && !visits[t].misaligned;
  }
  check(ok, what + " (" + str(static_cast<int64_t>(launches.size())) + " launches)");
}

void test_clip_launches() {
  // The chunk size: every resident block gets work on a DCGAN-64 critic (2.76 M elements on 132
  // SMs x 2 blocks), within the bounds, a multiple of the block's elements.
  const int64_t dcgan = clip_chunk_size(2765248, 264, 2048, 65536, 512);
  check(dcgan % 512 == 0 && dcgan >= 2048 && dcgan <= 65536 && 2765248 / dcgan >= 264,
        "clip_chunk_size: a DCGAN-64 list reaches every resident block (chunk " + str(dcgan) + ")");
  check(clip_chunk_size(100, 264, 2048, 65536, 512) == 2048, "clip_chunk_size: small list");
  check(clip_chunk_size(int64_t{1} << 34, 264, 2048, 65536, 512) == 65536,
        "clip_chunk_size: huge list");
  check(clip_chunk_size(0, 0, 2048, 65536, 512) == 2048, "clip_chunk_size: empty");

  const int64_t C = 4096;
  check_clip_launches({1}, C, 48, 400, "one element");
  check_clip_launches({C - 1, C, C + 1}, C, 48, 400, "chunk -1, chunk, chunk +1");
  check_clip_launches({3 * C + 7, 1, 2 * C}, C, 2, 400, "tensor slots full");
  std::vector<int64_t> many(150);
  for (size_t i = 0; i < many.size(); ++i) many[i] = 17 + static_cast<int64_t>(i);
  check_clip_launches(many, C, 64, 320, "150 small tensors, 64 per launch");
  check_clip_launches(many, C, 384, 2560, "150 small tensors, 384 per launch");
  // More blocks than one launch holds: the tensor is carried over, several times.
  check_clip_launches({5, 320 * C + 5, 3}, C, 64, 320, "a tensor carried into the next launch");
  check_clip_launches({2 * C, 7 * C}, C, 64, 3, "carried twice, 3 blocks per launch");
  check_clip_launches({3 * C}, C, 1, 1, "one block per launch");
  check_clip_launches({C, C, C}, C, 1, 400, "one tensor per launch");
  check_clip_launches({2 * C + 1, 5, 9 * C - 1, 1, 1, 1}, C, 2, 4, "both limits");
  check_clip_launches({0, 5, 0, C + 1, 0}, C, 2, 2, "empty tensors take no slot");
  check(plan_clip_launches({0, 0}, C, 64, 320).empty(), "plan_clip_launches: only empty tensors");
  const auto launches = plan_clip_launches({5, 320 * C + 5, 3}, C, 64, 320);
  check(launches.size() == 2 && launches[0].block_slot.size() == 320 &&
            launches[1].tensors == std::vector<int>({1, 2}) &&
            launches[1].block_slot.front() == 0 && launches[1].block_chunk.front() == 319,
        "plan_clip_launches: the half-finished tensor sits in slot 0 of the next launch");
}

}  // namespace

int main() {
  test_pack_phase();
  test_for_range();
  test_divider();
  test_sample_cursor();
  test_plan_samples();
  test_clip_launches();
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
