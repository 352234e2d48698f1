"""A registry of synthetic providers for the system view: who submits, to which ICB, how big.

``mhsds generate --providers N`` builds N providers' submission packages. Each provider here has:

* an ODS code: provider 1 is the synthetic trust itself (``R1A``); providers 2..N get
  ``Z<digit><letter>`` (``Z0A``, ``Z0B`` ... ``Z9Z``: 260 codes). Codes of that shape pass the v6
  header format (3 to 5 capitals and digits) but are clearly invented: NHS trusts' codes begin
  with R or T, and no organisation an MHSDS provider is coded ``Z..``;
* a name (invented), and an ICB with its NHS England region: real ICB and region ODS codes and
  names (public reference data, :data:`ICBS`), so the results group as an ICB would see them.
  Provider 1 belongs to NHS Herefordshire and Worcestershire ICB (QGH) as the trust does; the
  others go round :data:`ICBS` in order (regions alternate, so even 4 providers span regions);
* a size (``scale``: 1 = the trust's ~31,000 care contacts a month): ``MIN_SCALE`` plus a share
  of the rest drawn from a lognormal distribution (sigma 0.9: a few large trusts, many small
  ones) with the run's seed, so the sizes add up to ``total_scale`` (to rounding);
* NHS numbers from a national pool: one permutation (seeded by the run's seed) of the 909,090
  valid numbers of the 999 test range. Each provider has its own block of it and takes
  :data:`NHS_POOL_OVERLAP` (10 %) of the smaller of its and the previous provider's patients from
  the previous provider's block (:func:`nhs_pool`), so the same people are seen by consecutive
  providers. Blocks wrap round the pool: past ~35 units of total scale (one month; more
  patients with more months) they go round again and providers far apart share people too;
* the codes its patients' rows carry: the ICB's real sub-ICB location as home commissioner
  (OrgIDComm), four other ICBs' sub-ICB locations for out-of-area care, and invented GP practice
  codes ``Y9<ICB index:02><nn>`` (letter + 5 digits, the practice code shape), and postcodes
  (random units) in real postcode districts of the ICB's area.

The registry is written as ``providers.csv`` (:data:`COLUMNS`). Same N, seed and total scale =>
the same registry.
"""

from __future__ import annotations

import csv
import string
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from mhsds_pipeline.synthetic.profile import ProviderProfile, trust_profile
from mhsds_pipeline.system.outputs import REGISTRY_COLUMNS

#: what the system flow reads (``outputs.REGISTRY_COLUMNS``), and each provider's size
COLUMNS = (*REGISTRY_COLUMNS, "scale")
TRUST_ODS = "R1A"
MAX_PROVIDERS = 1 + 10 * 26
SIZE_SIGMA = 0.9
#: The smallest provider (scale 0.01: ~300 care contacts a month; below it some tables are empty).
MIN_SCALE = 0.01

REGIONS = {
    "Y56": "London",
    "Y58": "South West",
    "Y59": "South East",
    "Y60": "Midlands",
    "Y61": "East of England",
    "Y62": "North West",
    "Y63": "North East and Yorkshire",
}


@dataclass(frozen=True)
class Icb:
    code: str
    name: str
    region_code: str
    sub_icb: str  # a real sub-ICB location of the ICB (the home commissioner, OrgIDComm)
    #: Real postcode districts in the ICB's area, four pools (the generator's four localities);
    #: empty for the trust's ICB (it keeps trust.py's).
    postcodes: tuple[tuple[str, ...], ...] = ()


# fmt: off
#: Real ICBs (ODS codes and names, NHS England regions) with one of their sub-ICB locations and
#: postcode districts of their area, in an order that alternates regions. QGH first: the trust's.
ICBS: tuple[Icb, ...] = (
    Icb("QGH", "NHS Herefordshire and Worcestershire Integrated Care Board", "Y60", "18C"),
    Icb("QWE", "NHS South West London Integrated Care Board", "Y56", "36L",
        (("SW17", "SW18", "SW19", "SW20"), ("CR0", "CR2", "CR7"), ("KT1", "KT2", "KT3"), ("SM1", "SM4", "SM5"))),
    Icb("QOP", "NHS Greater Manchester Integrated Care Board", "Y62", "14L",
        (("M1", "M4", "M8", "M13"), ("BL1", "BL2", "BL3"), ("OL1", "OL4", "OL8"), ("SK1", "SK2", "SK4"))),
    Icb("QWO", "NHS West Yorkshire Integrated Care Board", "Y63", "15F",
        (("LS1", "LS6", "LS9", "LS11"), ("BD1", "BD3", "BD5"), ("HD1", "HD2", "HD3"), ("WF1", "WF2", "WF10"))),
    Icb("QUY", "NHS Bristol, North Somerset and South Gloucestershire Integrated Care Board", "Y58", "15C",
        (("BS1", "BS2", "BS3", "BS5"), ("BS20", "BS21", "BS22"), ("BS32", "BS34", "BS35"), ("BS15", "BS16"))),
    Icb("QXU", "NHS Surrey Heartlands Integrated Care Board", "Y59", "92A",
        (("GU1", "GU2", "GU4"), ("KT13", "KT15", "KT16"), ("RH1", "RH2", "RH4"), ("KT17", "KT18", "KT19"))),
    Icb("QUE", "NHS Cambridgeshire and Peterborough Integrated Care Board", "Y61", "06H",
        (("CB1", "CB2", "CB4"), ("PE1", "PE2", "PE3"), ("PE27", "PE28", "PE29"), ("CB6", "CB7", "PE13"))),
    Icb("QHL", "NHS Birmingham and Solihull Integrated Care Board", "Y60", "15E",
        (("B1", "B5", "B10", "B12"), ("B23", "B24", "B44"), ("B29", "B31", "B38"), ("B90", "B91", "B92"))),
    Icb("QKK", "NHS South East London Integrated Care Board", "Y56", "72Q",
        (("SE1", "SE5", "SE15"), ("SE6", "SE13", "SE23"), ("SE9", "SE18", "SE28"), ("BR1", "BR2", "BR6"))),
    Icb("QYG", "NHS Cheshire and Merseyside Integrated Care Board", "Y62", "99A",
        (("L1", "L4", "L8"), ("CH41", "CH43", "CH62"), ("WA1", "WA2", "WA5"), ("CW1", "CW2", "CH1"))),
    Icb("QHM", "NHS North East and North Cumbria Integrated Care Board", "Y63", "13T",
        (("NE1", "NE4", "NE6"), ("SR1", "SR2", "SR4"), ("DH1", "DL1", "TS1"), ("CA1", "CA2", "CA3"))),
    Icb("QJK", "NHS Devon Integrated Care Board", "Y58", "15N",
        (("EX1", "EX2", "EX4"), ("PL1", "PL4", "PL6"), ("TQ1", "TQ2", "TQ12"), ("EX31", "EX32", "EX39"))),
    Icb("QKS", "NHS Kent and Medway Integrated Care Board", "Y59", "91Q",
        (("ME1", "ME4", "ME7"), ("CT1", "CT2", "CT9"), ("TN23", "TN24", "TN9"), ("DA1", "DA11", "DA12"))),
    Icb("QMM", "NHS Norfolk and Waveney Integrated Care Board", "Y61", "26A",
        (("NR1", "NR2", "NR3"), ("NR30", "NR31", "NR32"), ("PE30", "PE31", "PE38"), ("IP22", "NR16", "NR17"))),
    Icb("QNC", "NHS Staffordshire and Stoke-on-Trent Integrated Care Board", "Y60", "05W",
        (("ST1", "ST4", "ST6"), ("ST16", "ST17", "ST18"), ("WS11", "WS12", "WS13"), ("DE13", "DE14", "B79"))),
    Icb("QSL", "NHS Somerset Integrated Care Board", "Y58", "11X",
        (("TA1", "TA2", "TA6"), ("BA20", "BA21", "TA18"), ("BA11", "BA16", "BA4"), ("TA20", "TA21", "TA24"))),
)
# fmt: on

#: Practices per locality pool of a generated provider (the trust has 25 + 30 + 15 + 15).
PRACTICES_PER_POOL = 12
#: NHS numbers: this share of the smaller of two consecutive providers' patients are both's.
NHS_POOL_OVERLAP = 0.1
#: A provider's own block of the pool is this many times its expected patients (room for error).
NHS_BLOCK_MARGIN = 1.25
#: EPR patients of a provider of scale 1 generated for one month (measured: ~20,000-21,000).
PATIENTS_PER_SCALE_MONTH = 21_000


@dataclass(frozen=True)
class Provider:
    number: int  # 1-based position in the registry
    org_id_provider: str
    provider_name: str
    icb_code: str
    icb_name: str
    region_code: str
    region_name: str
    scale: float

    def row(self) -> dict:
        d = asdict(self)
        return {k: d[k] for k in COLUMNS}

    @property
    def icb(self) -> Icb:
        return next(i for i in ICBS if i.code == self.icb_code)


def ods_code(number: int) -> str:
    """Provider ``number`` (1-based) -> its ODS code: R1A, then Z0A, Z0B, ... Z9Z."""
    if number == 1:
        return TRUST_ODS
    if not 2 <= number <= MAX_PROVIDERS:
        raise ValueError(f"provider number must be between 1 and {MAX_PROVIDERS}, got {number}")
    k = number - 2
    return f"Z{k // 26}{string.ascii_uppercase[k % 26]}"


def sizes(n: int, total_scale: float, seed: int) -> list[float]:
    """``n`` provider scales adding up to ``total_scale`` (to rounding): lognormal, so skewed."""
    if n < 1:
        raise ValueError(f"need at least one provider, got {n}")
    if not total_scale > 0:
        raise ValueError(f"total scale must be positive, got {total_scale}")
    if total_scale < n * MIN_SCALE:
        raise ValueError(f"total scale {total_scale} is below {n} providers x the smallest ({MIN_SCALE})")
    w = np.random.default_rng([seed, 15, n]).lognormal(0.0, SIZE_SIGMA, n)
    spread = total_scale - n * MIN_SCALE
    return [round(MIN_SCALE + float(x), 4) for x in w / w.sum() * spread]


def registry(n: int, total_scale: float = 1.0, seed: int = 42) -> list[Provider]:
    if n > MAX_PROVIDERS:
        raise ValueError(f"at most {MAX_PROVIDERS} synthetic providers, got {n}")
    out = []
    for i, scale in enumerate(sizes(n, total_scale, seed)):
        icb = ICBS[i % len(ICBS)]
        code = ods_code(i + 1)
        name = (
            "Synthetic mental health trust (Herefordshire and Worcestershire)"
            if code == TRUST_ODS
            else f"Synthetic mental health provider {code}"
        )
        region = REGIONS[icb.region_code]
        out.append(Provider(i + 1, code, name, icb.code, icb.name, icb.region_code, region, scale))
    return out


def _expected_patients(p: Provider) -> float:
    return p.scale * PATIENTS_PER_SCALE_MONTH


def nhs_pool(provider: Provider, providers: list[Provider], pool_seed: int) -> tuple[int, int, int, int]:
    """``provider``'s share of the national NHS number pool (``spine.NHS_POOL``): its own block,
    after the blocks of the providers before it (each :data:`NHS_BLOCK_MARGIN` x its expected
    patients), and :data:`NHS_POOL_OVERLAP` of the smaller of it and the previous provider taken
    from the start of the previous provider's block: the same people, seen by both."""
    start, prev_start = 0, 0
    for p in providers[: provider.number - 1]:
        prev_start = start
        start += int(NHS_BLOCK_MARGIN * _expected_patients(p)) + 1
    if provider.number == 1:
        return (pool_seed, 0, 0, 0)
    prev = providers[provider.number - 2]
    shared = int(NHS_POOL_OVERLAP * min(_expected_patients(prev), _expected_patients(provider)))
    return (pool_seed, start, prev_start, shared)


def profile(provider: Provider, providers: list[Provider], pool_seed: int) -> ProviderProfile:
    """What the generator needs to build ``provider``'s EPR (see ``synthetic.profile``)."""
    pool = nhs_pool(provider, providers, pool_seed)
    if provider.org_id_provider == TRUST_ODS:
        base = trust_profile()
        return ProviderProfile(
            org_id=base.org_id,
            practices=base.practices,
            commissioner_home=base.commissioner_home,
            commissioners_out_of_area=base.commissioners_out_of_area,
            id_prefix="",
            nhs_pool=pool,
        )
    index = next(k for k, i in enumerate(ICBS) if i.code == provider.icb_code)
    others = [i.sub_icb for k, i in enumerate(ICBS) if k != index]
    out_of_area = tuple(others[(index + j) % len(others)] for j in range(4))
    practices = tuple(
        tuple(f"Y9{index:02d}{pool * PRACTICES_PER_POOL + n:02d}" for n in range(PRACTICES_PER_POOL))
        for pool in range(4)
    )
    return ProviderProfile(
        org_id=provider.org_id_provider,
        practices=practices,
        commissioner_home=ICBS[index].sub_icb,
        commissioners_out_of_area=out_of_area,
        id_prefix=provider.org_id_provider,
        nhs_pool=pool,
        postcode_districts=ICBS[index].postcodes or None,  # the trust's ICB keeps trust.py's districts
        border_residents=False,
    )


def write_registry(path: Path, providers: list[Provider]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=COLUMNS, lineterminator="\n")
        w.writeheader()
        for p in providers:
            w.writerow(p.row())
    return path


__all__ = [
    "COLUMNS",
    "ICBS",
    "Provider",
    "nhs_pool",
    "ods_code",
    "profile",
    "registry",
    "sizes",
]
