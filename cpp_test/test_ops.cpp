// The LibTorch face of gankernels: every op called through the dispatcher, as a C++ user would,
// and compared with the same formulas written with ATen ops (docs/math.md). Forward values against
// ATen; backward ops against ATen's autograd of those formulas.
//
// Runs on the CPU always, and also on the GPU when the library was built with the CUDA kernels
// (GANKERNELS_CUDA=ON) and a GPU is visible. Prints one line per check and ends with
// "N passed, M failed"; exits non-zero on any failure.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/csrc/autograd/autograd.h>

#include <cmath>
#include <cstdio>
#include <optional>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

namespace {

using at::Tensor;

int g_passed = 0;
int g_failed = 0;

void report(bool ok, const std::string& what, const std::string& detail = "") {
  if (ok) {
    ++g_passed;
    std::printf("ok    %s\n", what.c_str());
  } else {
    ++g_failed;
    std::printf("FAIL  %s %s\n", what.c_str(), detail.c_str());
  }
}

std::pair<double, double> tolerance(at::ScalarType t) {
  switch (t) {
    case at::kDouble: return {1e-10, 1e-12};
    case at::kHalf: return {2e-3, 1e-3};
    case at::kBFloat16: return {1.6e-2, 1e-2};
    default: return {1e-5, 1e-6};
  }
}

// actual vs expected (expected in a wider dtype is fine): same shape, close values.
void expect_close(const Tensor& actual, const Tensor& expected, at::ScalarType dtype,
                  const std::string& what) {
  if (actual.sizes() != expected.sizes()) {
    std::ostringstream os;
    os << "shape " << actual.sizes() << " != " << expected.sizes();
    report(false, what, os.str());
    return;
  }
  const auto [rtol, atol] = tolerance(dtype);
  const Tensor a = actual.to(at::kCPU, at::kDouble);
  const Tensor e = expected.to(at::kCPU, at::kDouble);
  const bool ok = at::allclose(a, e, rtol, atol, /*equal_nan=*/true);
  std::string detail;
  if (!ok) {
    detail = "max abs diff " + std::to_string((a - e).abs().max().item<double>());
  }
  report(ok, what, detail);
}

void expect_equal(const Tensor& actual, const Tensor& expected, const std::string& what) {
  const bool ok =
      actual.sizes() == expected.sizes() && at::equal(actual.to(at::kCPU), expected.to(at::kCPU));
  report(ok, what);
}

template <typename Fn>
void expect_error(Fn&& fn, const std::string& needle, const std::string& what) {
  try {
    fn();
  } catch (const c10::Error& err) {
    const std::string msg = err.what_without_backtrace();
    report(msg.find(needle) != std::string::npos, what, "message: " + msg);
    return;
  }
  report(false, what, "no error raised");
}

c10::OperatorHandle op(const char* name) {
  return c10::Dispatcher::singleton().findSchemaOrThrow(name, "");
}

std::string label(const char* name, const at::TensorOptions& o, const std::string& extra = "") {
  std::ostringstream os;
  os << name << " [" << o.device() << ", " << c10::typeMetaToScalarType(o.dtype()) << "]"
     << (extra.empty() ? "" : " " + extra);
  return os.str();
}

at::ScalarType opmath_of(at::ScalarType t) { return t == at::kDouble ? at::kDouble : at::kFloat; }

// ---- gp_interpolate -----------------------------------------------------------------------------

void test_gp_interpolate(const at::TensorOptions& o) {
  const auto fwd =
      op("gankernels::gp_interpolate").typed<Tensor(const Tensor&, const Tensor&, const Tensor&)>();
  const auto bwd = op("gankernels::gp_interpolate_backward")
                       .typed<std::tuple<Tensor, Tensor, Tensor>(const Tensor&, const Tensor&,
                                                                 const std::optional<Tensor>&,
                                                                 const std::optional<Tensor>&)>();
  const auto dtype = c10::typeMetaToScalarType(o.dtype());
  const auto opmath = opmath_of(dtype);
  for (const char* layout : {"contiguous", "channels_last", "strided"}) {
    Tensor real = at::randn({5, 3, 7, 9}, o);
    if (std::string(layout) == "channels_last") {
      real = real.contiguous(at::MemoryFormat::ChannelsLast);
    } else if (std::string(layout) == "strided") {
      real = at::randn({5, 3, 7, 18}, o).slice(3, 0, 18, 2);
    }
    const Tensor fake = at::randn({5, 3, 7, 9}, o);
    const Tensor eps = at::rand({5}, o);
    const Tensor e = eps.to(opmath).view({-1, 1, 1, 1});
    const Tensor expected = e * real.to(opmath) + (1 - e) * fake.to(opmath);
    const Tensor out = fwd.call(real, fake, eps);
    expect_close(out, expected, dtype, label("gp_interpolate", o, layout));
    if (std::string(layout) != "strided") {
      report(out.strides() == real.strides(), label("gp_interpolate", o, layout) + " strides");
    }

    const Tensor grad = at::randn({5, 3, 7, 9}, o);
    const auto [gr, gf, ge] = bwd.call(grad, eps, real, fake);
    const Tensor g = grad.to(opmath);
    expect_close(gr, e * g, dtype, label("gp_interpolate_backward grad_real", o, layout));
    expect_close(gf, (1 - e) * g, dtype, label("gp_interpolate_backward grad_fake", o, layout));
    const Tensor expected_eps = (g * (real.to(opmath) - fake.to(opmath))).flatten(1).sum(1);
    // grad_eps sums 189 products: float32 gets room for the summation order.
    expect_close(ge.to(opmath), expected_eps, dtype == at::kFloat ? at::kHalf : dtype,
                 label("gp_interpolate_backward grad_eps", o, layout));
  }
  // Many samples of few elements, and eps's gradient not wanted.
  const Tensor real = at::randn({1000, 3}, o), fake = at::randn({1000, 3}, o);
  const Tensor eps = at::rand({1000}, o), grad = at::randn({1000, 3}, o);
  const Tensor e = eps.to(opmath).view({-1, 1});
  expect_close(fwd.call(real, fake, eps), e * real.to(opmath) + (1 - e) * fake.to(opmath), dtype,
               label("gp_interpolate", o, "1000x3"));
  const auto [gr, gf, ge] = bwd.call(grad, eps, std::nullopt, std::nullopt);
  expect_close(gr, e * grad.to(opmath), dtype, label("gp_interpolate_backward", o, "no eps grad"));
  expect_equal(ge, at::zeros({1000}, o), label("gp_interpolate_backward", o, "zero grad_eps"));
  expect_error([&] { fwd.call(real, fake, at::rand({7}, o)); }, "eps must have shape [B] = [1000]",
               label("gp_interpolate", o, "bad eps shape"));
}

// ---- norm_penalty -------------------------------------------------------------------------------

std::tuple<Tensor, Tensor> aten_norm_penalty(const Tensor& grad, double target, double weight,
                                             bool one_sided, double inv_scale) {
  const Tensor flat = grad.flatten(1).to(opmath_of(grad.scalar_type())) * inv_scale;
  const Tensor norms = at::linalg_vector_norm(flat, 2, at::IntArrayRef{1});
  Tensor gap = norms - target;
  if (one_sided) gap = gap.clamp_min(0);
  return {weight * gap.square().mean(), norms};
}

void test_norm_penalty(const at::TensorOptions& o) {
  const auto fwd =
      op("gankernels::norm_penalty")
          .typed<std::tuple<Tensor, Tensor>(const Tensor&, double, double, bool, double)>();
  const auto bwd = op("gankernels::norm_penalty_backward")
                       .typed<Tensor(const Tensor&, const std::optional<Tensor>&, const Tensor&,
                                     const Tensor&, double, double, bool, double)>();
  const auto dtype = c10::typeMetaToScalarType(o.dtype());
  const auto opmath = opmath_of(dtype);
  struct Case {
    std::vector<int64_t> shape;
    double target, weight;
    bool one_sided;
    double inv_scale;
  };
  const std::vector<Case> cases = {
      {{6, 3, 8, 8}, 1.0, 10.0, false, 1.0}, {{6, 3, 8, 8}, 1.0, 10.0, true, 1.0},
      {{256, 2}, 0.0, 5.0, false, 1.0},      {{3, 70001}, 1.0, 10.0, false, 0.25},
      {{1, 1}, 1.0, 10.0, false, 1.0},
  };
  for (const Case& c : cases) {
    std::ostringstream name;
    name << c10::IntArrayRef(c.shape) << " K=" << c.target << " one_sided=" << c.one_sided
         << " s=" << c.inv_scale;
    const Tensor grad = at::randn(c.shape, o) / std::sqrt(static_cast<double>(c.shape.back()));
    const auto [loss, norms] = fwd.call(grad, c.target, c.weight, c.one_sided, c.inv_scale);
    const auto [eloss, enorms] =
        aten_norm_penalty(grad, c.target, c.weight, c.one_sided, c.inv_scale);
    expect_close(norms, enorms, dtype, label("norm_penalty norms", o, name.str()));
    expect_close(loss, eloss, dtype, label("norm_penalty loss", o, name.str()));
    report(loss.dim() == 0 && loss.scalar_type() == opmath && norms.scalar_type() == opmath,
           label("norm_penalty", o, name.str() + " output dtypes"));

    // Backward against autograd of the ATen formula, with a loss gradient other than 1 and a
    // gradient for the norms too.
    const Tensor leaf = grad.detach().to(opmath).requires_grad_(true);
    const auto [aloss, anorms] =
        aten_norm_penalty(leaf, c.target, c.weight, c.one_sided, c.inv_scale);
    const Tensor grad_loss = at::full({}, 0.75, o.dtype(opmath));
    const Tensor grad_norms = at::randn({c.shape[0]}, o.dtype(opmath));
    const Tensor expected = torch::autograd::grad({aloss, anorms}, {leaf}, {grad_loss, grad_norms},
                                                  /*retain_graph=*/true)[0];
    const Tensor got =
        bwd.call(grad_loss, grad_norms, grad, norms, c.target, c.weight, c.one_sided, c.inv_scale);
    expect_close(got, expected, dtype, label("norm_penalty_backward", o, name.str()));
    const Tensor expected_loss_only = torch::autograd::grad({aloss}, {leaf}, {grad_loss})[0];
    const Tensor got_loss_only = bwd.call(grad_loss, std::nullopt, grad, norms, c.target, c.weight,
                                          c.one_sided, c.inv_scale);
    expect_close(got_loss_only, expected_loss_only, dtype,
                 label("norm_penalty_backward", o, name.str() + " no grad_norms"));
  }
  // A zero row has norm 0 and gradient 0, never NaN.
  const Tensor zero = at::zeros({2, 5}, o);
  const auto [zloss, znorms] = fwd.call(zero, 1.0, 10.0, false, 1.0);
  const Tensor zgrad =
      bwd.call(at::ones({}, o.dtype(opmath)), std::nullopt, zero, znorms, 1.0, 10.0, false, 1.0);
  expect_equal(zgrad, at::zeros({2, 5}, o), label("norm_penalty_backward", o, "zero rows"));
  expect_error([&] { fwd.call(zero, -1.0, 10.0, false, 1.0); }, "target must be >= 0",
               label("norm_penalty", o, "negative target"));
}

// ---- adversarial_loss ---------------------------------------------------------------------------

const char* const kKinds[] = {
    "minimax", "nonsaturating",  "wasserstein", "hinge",  "least_squares",     "relativistic",
    "kl",      "reverse_kl",     "pearson",     "neyman", "squared_hellinger", "jensen_shannon",
    "gan",     "total_variation"};

Tensor sp(const Tensor& x) { return at::softplus(x); }

// g_f(v) and f*(g_f(v)) of docs/math.md section 3.
Tensor activation(const std::string& kind, const Tensor& v) {
  const double log2 = std::log(2.0);
  if (kind == "kl" || kind == "pearson") return v;
  if (kind == "reverse_kl") return -at::exp(-v);
  if (kind == "neyman") return -at::expm1(v);
  if (kind == "squared_hellinger") return -at::expm1(-v);
  if (kind == "jensen_shannon") return log2 - sp(-v);
  if (kind == "gan") return -sp(-v);
  return 0.5 * at::tanh(v);  // total_variation
}

Tensor conjugate_of_activation(const std::string& kind, const Tensor& v) {
  const double log2 = std::log(2.0);
  if (kind == "kl") return at::exp(v - 1);
  if (kind == "reverse_kl") return v - 1;
  if (kind == "pearson") return v.square() / 4 + v;
  if (kind == "neyman") return 2 - 2 * at::exp(v / 2);
  if (kind == "squared_hellinger") return at::expm1(v);
  if (kind == "jensen_shannon") return sp(v) - log2;
  if (kind == "gan") return sp(v);
  return 0.5 * at::tanh(v);  // total_variation
}

Tensor aten_loss(const std::optional<Tensor>& real, const Tensor& fake, const std::string& kind,
                 bool critic, double a, double b, double c, bool nonsaturating) {
  const Tensor vg = fake;
  const Tensor vr = real.has_value() ? *real : Tensor();
  if (kind == "minimax" || kind == "nonsaturating") {
    if (critic) return sp(-vr).mean() + sp(vg).mean();
    return kind == "minimax" ? -sp(vg).mean() : sp(-vg).mean();
  }
  if (kind == "wasserstein") return critic ? vg.mean() - vr.mean() : -vg.mean();
  if (kind == "hinge") {
    return critic ? at::relu(1 - vr).mean() + at::relu(1 + vg).mean() : -vg.mean();
  }
  if (kind == "least_squares") {
    if (critic) return 0.5 * (vr - b).square().mean() + 0.5 * (vg - a).square().mean();
    return 0.5 * (vg - c).square().mean();
  }
  if (kind == "relativistic") {
    const Tensor mr = vr.mean(), mg = vg.mean();
    if (critic) return sp(-(vr - mg)).mean() + sp(vg - mr).mean();
    return sp(-(vg - mr)).mean() + sp(vr - mg).mean();
  }
  if (critic) return -activation(kind, vr).mean() + conjugate_of_activation(kind, vg).mean();
  if (nonsaturating) return -activation(kind, vg).mean();
  return -conjugate_of_activation(kind, vg).mean();
}

void test_adversarial_loss(const at::TensorOptions& o) {
  const auto fwd = op("gankernels::adversarial_loss")
                       .typed<Tensor(const std::optional<Tensor>&, const Tensor&, c10::string_view,
                                     c10::string_view, double, double, double, bool, double, double,
                                     const std::optional<Tensor>&, const std::optional<Tensor>&,
                                     c10::string_view)>();
  const auto bwd =
      op("gankernels::adversarial_loss_backward")
          .typed<std::tuple<Tensor, Tensor>(
              const Tensor&, const std::optional<Tensor>&, const Tensor&, c10::string_view,
              c10::string_view, double, double, double, bool, double, double,
              const std::optional<Tensor>&, const std::optional<Tensor>&, c10::string_view)>();
  // The defaults of the options after `nonsaturating`: no smoothing, margin 1, no weights, mean.
  const std::optional<Tensor> none;
  const auto dtype = c10::typeMetaToScalarType(o.dtype());
  const auto opmath = opmath_of(dtype);
  // Small (one block on the GPU) and large (many blocks), with different sizes for v_r, v_g.
  const std::vector<std::pair<int64_t, int64_t>> sizes = {{64, 48}, {12000, 9001}};
  for (const auto& [nr, ng] : sizes) {
    for (const char* kind_c : kKinds) {
      for (const int variant : {0, 1, 2}) {
        const std::string kind = kind_c;
        const bool f_divergence =
            std::string(" minimax nonsaturating wasserstein hinge least_squares relativistic ")
                .find(" " + kind + " ") == std::string::npos;
        // 0: critic, 1: generator, 2: non-saturating f-GAN generator
        if (variant == 2 && !f_divergence) continue;
        const bool critic = variant == 0, ns = variant == 2;
        const char* role = critic ? "critic" : "generator";
        const bool ls = kind == "least_squares";
        const double a = ls ? 0.0 : -1.0, b = 1.0, c = ls ? 1.0 : 0.0;
        const Tensor real = at::randn({nr}, o), fake = at::randn({ng}, o);
        const std::string name = kind + " " + role + " " + std::to_string(nr) + "/" +
                                 std::to_string(ng) + (ns ? " nonsaturating" : "");
        const Tensor loss =
            fwd.call(real, fake, kind, role, a, b, c, ns, 0.0, 1.0, none, none, "mean");
        const Tensor rl = real.detach().to(opmath).requires_grad_(true);
        const Tensor fl = fake.detach().to(opmath).requires_grad_(true);
        const Tensor expected = aten_loss(rl, fl, kind, critic, a, b, c, ns);
        expect_close(loss, expected, dtype, label("adversarial_loss", o, name));
        report(loss.dim() == 0 && loss.scalar_type() == opmath,
               label("adversarial_loss", o, name + " output dtype"));

        const Tensor grad_loss = at::full({}, -1.5, o.dtype(opmath));
        const auto grads = torch::autograd::grad({expected}, {rl, fl}, {grad_loss},
                                                 /*retain_graph=*/std::nullopt,
                                                 /*create_graph=*/false, /*allow_unused=*/true);
        const auto [gr, gf] =
            bwd.call(grad_loss, real, fake, kind, role, a, b, c, ns, 0.0, 1.0, none, none, "mean");
        const Tensor egr = grads[0].defined() ? grads[0] : at::zeros_like(rl);
        expect_close(gr, egr, dtype, label("adversarial_loss_backward grad_real", o, name));
        expect_close(gf, grads[1], dtype, label("adversarial_loss_backward grad_fake", o, name));
        report(gr.scalar_type() == dtype && gf.scalar_type() == dtype,
               label("adversarial_loss_backward", o, name + " grad dtypes"));
      }
    }
  }
  // The generator loss without real outputs.
  const Tensor fake = at::randn({33}, o);
  const Tensor loss = fwd.call(std::nullopt, fake, "hinge", "generator", -1.0, 1.0, 0.0, false, 0.0,
                               1.0, none, none, "mean");
  expect_close(loss, -fake.to(opmath).mean(), dtype, label("adversarial_loss", o, "no real_out"));
  const auto [gr, gf] = bwd.call(at::ones({}, o.dtype(opmath)), std::nullopt, fake, "hinge",
                                 "generator", -1.0, 1.0, 0.0, false, 0.0, 1.0, none, none, "mean");
  report(gr.numel() == 0, label("adversarial_loss_backward", o, "no real_out: empty grad_real"));
  expect_close(gf, at::full({33}, -1.0 / 33, o.dtype(opmath)), dtype,
               label("adversarial_loss_backward", o, "no real_out"));
  expect_error(
      [&] {
        fwd.call(std::nullopt, fake, "hinge", "critic", -1.0, 1.0, 0.0, false, 0.0, 1.0, none, none,
                 "mean");
      },
      "needs real_out", label("adversarial_loss", o, "critic without real_out"));
  expect_error(
      [&] {
        fwd.call(fake, fake, "bogus", "critic", -1.0, 1.0, 0.0, false, 0.0, 1.0, none, none,
                 "mean");
      },
      "unknown kind 'bogus'", label("adversarial_loss", o, "unknown kind"));

  // The options, against ATen: TF-GAN's label smoothing, a hinge margin with weights and "sum",
  // and the per-element losses of "none".
  const Tensor r = at::randn({40}, o), g = at::randn({40}, o);
  const Tensor r64 = r.to(opmath), g64 = g.to(opmath);
  const Tensor w = at::rand({40}, o.dtype(at::kDouble));
  const auto sp = [](const Tensor& x) { return at::softplus(x); };
  expect_close(
      fwd.call(r, g, "minimax", "critic", -1.0, 1.0, 0.0, false, 0.25, 1.0, none, none, "mean"),
      (sp(-r64) + 0.125 * r64).mean() + sp(g64).mean(), dtype,
      label("adversarial_loss", o, "label_smoothing"));
  expect_close(fwd.call(r, g, "hinge", "critic", -1.0, 1.0, 0.0, false, 0.0, 0.5, w, w, "sum"),
               (w.to(opmath) * (at::relu(0.5 - r64) + at::relu(0.5 + g64))).sum(), dtype,
               label("adversarial_loss", o, "margin, weights, sum"));
  expect_close(
      fwd.call(r, g, "wasserstein", "critic", -1.0, 1.0, 0.0, false, 0.0, 1.0, none, w, "none"),
      g64 * w.to(opmath) - r64, dtype, label("adversarial_loss", o, "none"));
  expect_error(
      [&] {
        fwd.call(r, g, "hinge", "critic", -1.0, 1.0, 0.0, false, 0.0, 1.0, none, none, "avg");
      },
      "reduction must be one of mean, sum, none",
      label("adversarial_loss", o, "unknown reduction"));
}

// ---- clip_ --------------------------------------------------------------------------------------

void test_clip(const at::Device& device) {
  const auto clip = op("gankernels::clip_").typed<Tensor(at::TensorList, double)>();
  const double c = 0.01;
  // Mixed dtypes, an empty tensor, a strided view, sizes around a GPU chunk (65536), and
  // injected infinities and NaN.
  std::vector<Tensor> params;
  const std::vector<std::pair<int64_t, at::ScalarType>> specs = {
      {1, at::kFloat},       {300, at::kFloat},   {65535, at::kFloat}, {65536, at::kFloat},
      {65537, at::kFloat},   {0, at::kFloat},     {4097, at::kDouble}, {1025, at::kHalf},
      {2049, at::kBFloat16}, {200000, at::kFloat}};
  for (const auto& [n, dt] : specs) {
    params.push_back(
        (at::randn({n}, at::TensorOptions().dtype(at::kDouble)) * 0.02).to(dt).to(device));
  }
  params[1][3] = INFINITY;
  params[1][4] = -INFINITY;
  params[1][5] = NAN;
  params[7][0] = NAN;
  Tensor base = at::randn({64, 8}, at::TensorOptions().device(device)) * 0.02;
  params.push_back(base.slice(1, 0, 8, 2));  // strided: clamped through a copy

  std::vector<Tensor> expected;
  int64_t expected_count = 0;
  for (const Tensor& p : params) {
    const Tensor e = p.clamp(-c, c);
    expected.push_back(e);
    const Tensor bound = at::full({}, c, p.options());
    expected_count += (e.abs() == bound).sum().item<int64_t>();
  }
  const Tensor count = clip.call(params, c);
  std::ostringstream dev;
  dev << device;
  report(count.dim() == 0 && count.scalar_type() == at::kLong && count.device() == device,
         "clip_ [" + dev.str() + "] count is an int64 scalar on the params' device");
  report(count.item<int64_t>() == expected_count, "clip_ [" + dev.str() + "] count " +
                                                      std::to_string(count.item<int64_t>()) +
                                                      " == " + std::to_string(expected_count));
  bool same = true;
  for (size_t i = 0; i < params.size(); ++i) {
    same = same && at::equal(params[i].isnan(), expected[i].isnan()) &&
           at::equal(params[i].nan_to_num(0), expected[i].nan_to_num(0));
  }
  report(same, "clip_ [" + dev.str() + "] values equal torch.clamp (NaN kept)");
  expect_error([&] { clip.call(params, -1.0); }, "c must be a positive number",
               "clip_ [" + dev.str() + "] negative c");
}

// ema_: t <- t + w (s - t) for a list of mixed dtypes against ATen's lerp_ (the same formula, in
// the opmath type for half types), decay 0 and 1 exactly.
void test_ema(const at::Device& dev) {
  const auto ema = op("gankernels::ema_").typed<void(at::TensorList, at::TensorList, double)>();
  std::vector<Tensor> target, source, expected;
  for (const int64_t n : {1, 7, 4099, 70001}) {
    for (const auto dtype : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}) {
      const auto o = at::TensorOptions().device(dev).dtype(dtype);
      target.push_back(at::randn({n}, o));
      source.push_back(at::randn({n}, o));
      const auto opmath = opmath_of(dtype);
      expected.push_back(
          target.back().to(opmath).lerp(source.back().to(opmath), 1.0 - 0.9).to(dtype));
    }
  }
  ema.call(target, source, 0.9);
  for (size_t k = 0; k < target.size(); ++k) {
    expect_close(target[k], expected[k], target[k].scalar_type(),
                 "ema_ [" + dev.str() + "] tensor " + std::to_string(k) + " equals lerp_");
  }
  const std::vector<Tensor> kept = {target[0].clone()};
  std::vector<Tensor> t0 = {target[0]};
  ema.call(t0, {source[0]}, 1.0);
  report(at::equal(t0[0], kept[0]), "ema_ [" + dev.str() + "] decay 1 keeps the target");
  ema.call(t0, {source[0]}, 0.0);
  report(at::equal(t0[0], source[0]), "ema_ [" + dev.str() + "] decay 0 copies the source");
  expect_error([&] { ema.call(t0, {source[0]}, 1.5); }, "decay must be a number in [0, 1]",
               "ema_ [" + dev.str() + "] decay above 1");
}

void run_all(const at::Device& device) {
  for (const auto dtype : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}) {
    const auto o = at::TensorOptions().device(device).dtype(dtype);
    test_gp_interpolate(o);
    test_norm_penalty(o);
    test_adversarial_loss(o);
  }
  test_clip(device);
  test_ema(device);
}

}  // namespace

int main() {
  at::manual_seed(0);
  for (const char* name : {"gankernels::gp_interpolate", "gankernels::gp_interpolate_backward",
                           "gankernels::norm_penalty", "gankernels::norm_penalty_backward",
                           "gankernels::adversarial_loss", "gankernels::adversarial_loss_backward",
                           "gankernels::clip_", "gankernels::ema_"}) {
    const auto handle = c10::Dispatcher::singleton().findOp({name, ""});
    report(handle.has_value() && handle->hasKernelForDispatchKey(c10::DispatchKey::CPU),
           std::string(name) + " has a CPU kernel");
  }
  run_all(at::kCPU);
#ifdef GANKERNELS_WITH_CUDA
  if (at::hasCUDA()) {
    run_all(at::Device(at::kCUDA, 0));
  } else {
    std::printf("skip  the CUDA kernels: no GPU visible (they are compiled, not run)\n");
  }
#endif
  std::printf("%d passed, %d failed\n", g_passed, g_failed);
  return g_failed == 0 ? 0 : 1;
}
