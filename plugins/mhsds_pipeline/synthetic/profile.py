"""Who the synthetic trust is: the few values that make one generated EPR a given provider's.

The generator builds one trust (``trust.py``: ODS code R1A, its GP practices, sub-ICB
commissioners and sites). To build many providers' EPRs (``mhsds generate --providers``) the same
model runs once per provider with a :class:`ProviderProfile` applied: its own ODS code (header,
staff and site codes), its own ICB's GP practices and sub-ICB commissioners, a prefix on every
local identifier (so ``P0000001`` of two providers never collide), and a window of a national
pool of test-range NHS numbers (so the same person can be seen by several providers).

:func:`applied` sets these on the modules that read them and restores them afterwards; without
it (``make run``) nothing changes, so the single trust keeps byte-identical tables.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from mhsds_pipeline.synthetic import frames, spine, trust, v6_spec


@dataclass(frozen=True)
class ProviderProfile:
    org_id: str
    #: GP practice codes per locality (``trust.LOCALITIES`` order; four pools).
    practices: tuple[tuple[str, ...], ...]
    commissioner_home: str
    #: Four sub-ICB locations an out-of-area referral is commissioned by.
    commissioners_out_of_area: tuple[str, ...]
    #: Prepended to every local identifier (``ID_FORMATS`` prefixes): ``"Z0A"`` -> ``Z0AP0000001``.
    id_prefix: str = ""
    #: (pool seed, own start, shared start, shared) in the national NHS number pool
    #: (``spine.NHS_POOL``); None = the trust's own draw.
    nhs_pool: tuple[int, int, int, int] | None = None
    #: Real postcode districts per locality (four pools); None = the trust's. Away from the
    #: Welsh border no patient has a Welsh postcode (``border_residents`` False).
    postcode_districts: tuple[tuple[str, ...], ...] | None = None
    border_residents: bool = True

    def site_code(self, trust_site: str) -> str:
        """R1AX1 -> <org>X1: the trust's sites renamed after the provider."""
        return self.org_id + trust_site[3:]

    @property
    def organisations(self) -> tuple[str, ...]:
        """Every organisation code this provider's rows carry (for the ODS seed)."""
        practices = tuple(c for pool in self.practices for c in pool)
        return (self.org_id, self.commissioner_home, *self.commissioners_out_of_area, *practices)


def trust_profile() -> ProviderProfile:
    """The single synthetic trust as a profile (R1A, Herefordshire and Worcestershire)."""
    return ProviderProfile(
        org_id=v6_spec.PROVIDER_ORG,
        practices=trust.PRACTICES,
        commissioner_home=trust.COMMISSIONER_HOME,
        commissioners_out_of_area=trust.COMMISSIONERS_OUT_OF_AREA,
    )


@contextmanager
def applied(profile: ProviderProfile) -> Iterator[ProviderProfile]:
    """Generate as ``profile``'s provider inside the block (one generation at a time per process)."""
    base = trust_profile()
    saved = {
        (trust, "PRACTICES"): trust.PRACTICES,
        (trust, "COMMISSIONER_HOME"): trust.COMMISSIONER_HOME,
        (trust, "COMMISSIONERS_OUT_OF_AREA"): trust.COMMISSIONERS_OUT_OF_AREA,
        (trust, "WARDS"): trust.WARDS,
        (v6_spec, "PROVIDER_ORG"): v6_spec.PROVIDER_ORG,
        (v6_spec, "EXTRA_ORGS"): v6_spec.EXTRA_ORGS,
        (spine, "NHS_POOL"): spine.NHS_POOL,
        (trust, "POSTCODE_DISTRICTS"): trust.POSTCODE_DISTRICTS,
        (trust, "BORDER_RESIDENT_SHARE"): trust.BORDER_RESIDENT_SHARE,
    }
    id_formats = dict(frames.ID_FORMATS)
    if len(profile.commissioners_out_of_area) != len(base.commissioners_out_of_area):
        raise ValueError(
            f"{profile.org_id}: give {len(base.commissioners_out_of_area)} out-of-area commissioners"
        )
    if len(profile.practices) != len(base.practices):
        raise ValueError(f"{profile.org_id}: give one practice pool per locality ({len(base.practices)})")
    try:
        trust.PRACTICES = profile.practices
        trust.COMMISSIONER_HOME = profile.commissioner_home
        trust.COMMISSIONERS_OUT_OF_AREA = profile.commissioners_out_of_area
        trust.WARDS = tuple(
            replace(w, site_code=profile.site_code(w.site_code)) for w in saved[trust, "WARDS"]
        )
        v6_spec.PROVIDER_ORG = profile.org_id
        v6_spec.EXTRA_ORGS = frozenset(profile.organisations)
        spine.NHS_POOL = profile.nhs_pool
        if profile.postcode_districts is not None:
            if len(profile.postcode_districts) != len(trust.LOCALITIES):
                raise ValueError(
                    f"{profile.org_id}: give one postcode pool per locality ({len(trust.LOCALITIES)})"
                )
            trust.POSTCODE_DISTRICTS = profile.postcode_districts
        if not profile.border_residents:
            trust.BORDER_RESIDENT_SHARE = {}
        for column, (prefix, width) in id_formats.items():  # the same dict object everyone imported
            frames.ID_FORMATS[column] = (profile.id_prefix + prefix, width)
        yield profile
    finally:
        for (module, name), value in saved.items():
            setattr(module, name, value)
        frames.ID_FORMATS.clear()
        frames.ID_FORMATS.update(id_formats)


__all__ = ["ProviderProfile", "applied", "trust_profile"]
