"""Text blocks every book page shows: what data and weights its numbers come from.

Kept here (not in the notebooks) so that each page labels synthetic numbers the same way and
carries the same provenance line.
"""

from __future__ import annotations

from collections.abc import Iterable

from avdd.backbones import describe
from avdd.config import Profile
from avdd.provenance import provenance


def data_notice(prof: Profile, backbones: Iterable[str], *, paper: bool = True) -> str:
    """A MyST admonition for synthetic data (never a reproduction), else a one-line summary.
    ``paper=False``: the page goes beyond the paper and shows none of its numbers (the notice
    says so instead of pointing to them)."""
    backbones = list(backbones)
    names = ", ".join(f"`{b}`" for b in backbones)
    if prof.synthetic:
        kinds = sorted({describe(b).weights for b in backbones})
        kinds_text = ", ".join(kinds[:-1]) + " or " + kinds[-1] if len(kinds) > 1 else kinds[0]
        pretrained = [b for b in backbones if describe(b).weights == "pretrained"]
        # The demo's one pretrained encoder is a speaker-verification model, not one of the
        # paper's: say so wherever it appears, lest its numbers read as the paper's backbones.
        extra = (f" ({', '.join(f'`{b}`' for b in pretrained)}: pretrained, but not one of "
                 "the paper's backbones)") if pretrained else ""
        return ("```{warning}\n**These are not reproductions of the paper's numbers.** They "
                "come from the *synthetic* audio-visual benchmark (seed "
                f"{prof.synth_seed}, scale {prof.synth_scale:g}) and from backbones with "
                f"{kinds_text} weights ({names}){extra}. They exercise the full "
                + ("pipeline; the paper's numbers (real datasets, pretrained backbones) are "
                   "shown beside them." if paper else
                   "pipeline. This page goes beyond the paper, which has no numbers to "
                   "compare them with.") + "\n```")
    return f"Real datasets ({', '.join(prof.data_roots)}); backbones: {names}."


def health_notice(degenerate: dict[str, str]) -> str:
    """A MyST warning naming each degenerate representation (``{backbone: reason}``, from
    :func:`avdd.analysis.health.degenerate_backbones`); "" when there is none.

    Its rows are kept (a page shows what was run) but must not be read as a finding: the
    probe sees frames that all point the same way, so a score measures the clip's length.
    """
    if not degenerate:
        return ""
    items = "\n".join(f"- `{b}`: {reason}" for b, reason in degenerate.items())
    return ("```{warning}\n**Degenerate representation"
            + ("s" if len(degenerate) > 1 else "") + ".** After L2 normalisation the frames "
            "of these feature stores all point (nearly) the same way, so the probe's scores "
            "measure clip length, not the representation; their numbers on this page are not "
            "findings (Table 1, *Feature health*):\n\n" + items + "\n```")


def provenance_markdown(prof: Profile, backbones: Iterable[str], **context) -> str:
    """Bullet list: data source, weights per backbone, seeds/context, git SHA, versions."""
    backbones = list(dict.fromkeys(backbones))
    prov = provenance(profile=prof.name, synthetic=prof.synthetic, backbones=backbones,
                      **context)
    weights = ", ".join(f"`{b}` = {describe(b).weights}" for b in backbones)
    extra = "; ".join(f"{k}: {v}" for k, v in context.items())
    lines = [
        f"- profile: `{prof.name}`; data: **"
        + ("synthetic benchmark" if prof.synthetic else "real datasets") + "**",
        f"- weights: {weights}",
        f"- {extra}" if extra else "",
        f"- git: `{str(prov.get('git_sha') or 'unknown')[:10]}`"
        + (" (uncommitted changes)" if prov.get("git_dirty") else ""),
        "- versions: " + ", ".join(f"{k} {v}" for k, v in prov["versions"].items()
                                   if k != "platform"),
    ]
    return "\n".join(line for line in lines if line)
