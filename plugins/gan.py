"""The original GAN (Goodfellow 2014) and its non-saturating form (DCGAN's).

    critic      L_D = E[sp(-v_r)] + E[sp(v_g)]                 (binary cross-entropy on logits)
    gan         L_G = -E[sp(v_g)]      (minimax, saturating: log(1 - D(G(z))) is minimised)
    nsgan       L_G = E[sp(-v_g)]      (non-saturating: -log D(G(z)))

Defaults: DCGAN's Adam 2e-4, betas (0.5, 0.999), one critic step per generator step.

nsgan on point data (the toy sets; `Defaults.points`) uses two time-scale learning rates
(TTUR, Heusel 2017): critic 1e-3, generator 1e-4. With DCGAN's 2e-4 for both the generator
collapses to one blob that hops from mode to mode on ring8. Measured on ring8 with the trainer's
point preset (generator 256 wide, critic 128, batch 256, 2,000 steps, linear lr decay), seed 0,
one thread of a shared 2-core CPU, 2026-11-23; metrics of docs/math.md section 7 on 2,500 samples:

    critic lr   generator lr   n_critic   modes   HQ %    train s
    2e-4        2e-4           1          0/8      0.0     25
    1e-3        1e-3           1          0/8      0.0     27
    1e-4        1e-4           1          0/8      0.0     30
    2e-4        2e-4           5          8/8     81.4     85
    1e-3        1e-4           1          8/8     62.0     29

(betas (0, 0.99) also collapsed: 0/8.) TTUR reaches all 8 modes at a third of the cost of five
critic steps. nsgan takes these rates on point data (`_common.TTUR_POINTS`, whose table has the
runs at the point preset's present budget of 10,000 critic steps).

gan takes a faster generator on point data, critic 1e-3 and generator 3e-4
(`_common.FAST_GENERATOR_POINTS`): with 1e-4 its samples spread between the modes. Measured
with the point preset (10,000 critic steps, so 10,000 generator steps; generator 256 wide,
critic 128, batch 256, linear lr decay), one thread per run, 2026-12-02; metrics of
docs/math.md section 7 on 2,500 samples:

    data     critic / generator lr   seeds       modes            HQ %                train s
    ring8    1e-3 / 1e-4             0           8/8              75.6                100
    ring8    1e-3 / 3e-4             0, 1, 2     8, 8, 8 /8       94.4, 93.3, 95.6    103-122
    grid25   1e-3 / 1e-4             0           19/25            45.7                146
    grid25   1e-3 / 3e-4             0, 1, 2     20, 25, 23 /25   78.3, 87.5, 77.4    116-121

The same rates on nsgan dropped grid25 to 13/25 (seed 0), so nsgan keeps the slower generator.
"""

from ._common import DCGAN_DEFAULTS, DCGAN_FAST_GENERATOR_DEFAULTS, AdversarialVariant

gan = AdversarialVariant(
    "gan",
    "original minimax GAN (Goodfellow 2014): BCE critic, saturating generator loss",
    DCGAN_FAST_GENERATOR_DEFAULTS,
    kind="minimax",
)

nsgan = AdversarialVariant(
    "nsgan",
    "non-saturating GAN (Goodfellow 2014, DCGAN): BCE critic, generator minimises -log D(G(z))",
    DCGAN_DEFAULTS,
    kind="nonsaturating",
)
