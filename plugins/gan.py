"""The original GAN (Goodfellow 2014) and its non-saturating form (DCGAN's).

    critic      L_D = E[sp(-v_r)] + E[sp(v_g)]                 (binary cross-entropy on logits)
    gan         L_G = -E[sp(v_g)]      (minimax, saturating: log(1 - D(G(z))) is minimised)
    nsgan       L_G = E[sp(-v_g)]      (non-saturating: -log D(G(z)))

Defaults: DCGAN's Adam 2e-4, betas (0.5, 0.999), one critic step per generator step.
"""

from gankernels.variants import Defaults

from ._common import AdversarialVariant

DCGAN_DEFAULTS = Defaults(n_critic=1, optimizer="adam", lr_critic=2e-4, lr_generator=2e-4,
                          betas=(0.5, 0.999))

gan = AdversarialVariant(
    "gan", "original minimax GAN (Goodfellow 2014): BCE critic, saturating generator loss",
    DCGAN_DEFAULTS, kind="minimax")

nsgan = AdversarialVariant(
    "nsgan", "non-saturating GAN (Goodfellow 2014, DCGAN): BCE critic, generator minimises "
    "-log D(G(z))", DCGAN_DEFAULTS, kind="nonsaturating")
