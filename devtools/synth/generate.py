"""`doudi synth`: a synthetic province written as inbox folders plus `truth/`; or a
country of several regions, one inbox per region (`RegionSplit`)."""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import polars as pl

from devtools.synth.extracts import MEDICAL_CHUNK_ROWS, Delivery, deliveries
from devtools.synth.truth import Truth
from devtools.synth.world import SynthConfig, build_world
from devtools.synth.writer import WriterOptions, write_delivery
from pipelines.quarters import Quarter
from sources.registry import all_sources, linked_sources

RULES_COVERED = ["D01", "D02", "D03", "D04", "N01", "N02", "N03", "N04", "N05", "N06", "Q01", "Q02"]


@dataclass(frozen=True)
class RegionSplit:
    """Write one inbox per region, `OUT/<region>/<Q>/<source>/<region>_<file>`, as each
    region's departments would deliver it; `OUT/truth/` stays the whole country's.

    A household (and its members) belongs to the region of its county; a department's
    record to the region of the person's home county, except a share of death records,
    which are registered in another region (a death away from home: the national step's
    D01 case). The region of a county is its code's first `digits` digits (2: province).
    """

    digits: int = 2
    away_deaths: float = 0.1

    def region_of(self, county_code: pl.Expr) -> pl.Expr:
        return county_code.str.slice(0, self.digits)


def _split_by_region(split: RegionSplit, delivery: Delivery, names: list[str], rng: np.random.Generator) -> dict[str, Delivery]:
    """The delivery's rows per region (regions without rows left out)."""
    records = delivery.records
    county = pl.col("__county") if "__county" in records.columns else pl.col("county_code")
    region = split.region_of(county)
    if delivery.source == "death" and len(names) > 1 and records.height:
        home = records.select(region).to_series().to_list()
        away = rng.random(records.height) < split.away_deaths
        step = rng.integers(1, len(names), records.height)
        moved = [names[(names.index(h) + int(s)) % len(names)] if a else h for h, a, s in zip(home, away, step)]
        region = pl.Series("__region", moved)
    records = records.with_columns(region.alias("__region"))
    return {
        name: Delivery(delivery.source, part.drop("__region"), delivery.split_by)
        for name in names
        if (part := records.filter(pl.col("__region") == name)).height
    }


def merge_region_inboxes(root: Path, out: Path) -> list[str]:
    """One inbox of the whole country from the regions' inboxes under `root` (as
    `generate(..., regions=RegionSplit())` wrote them): every region's files of a quarter and
    source side by side in `out/<Q>/<source>/`. Returns the regions merged."""
    root, out = Path(root), Path(out)
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "truth" and not p.name.startswith("."))
    if not names:
        raise ValueError(f"{root} holds no region inbox")
    for name in names:
        for path in sorted(p for p in (root / name).rglob("*") if p.is_file()):
            target = out / path.relative_to(root / name)
            if target.exists():
                raise ValueError(f"{path.relative_to(root)}: {target} already exists (two regions' files of the same name)")
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return names


def generate(
    out: Path,
    quarters: list[Quarter],
    households: int = 5000,
    seed: int = 20250101,
    writer_options: WriterOptions | None = None,
    regions: RegionSplit | None = None,
    **config_overrides,
) -> dict:
    """Write the inbox for every quarter (one per region with `regions`) and the truth;
    return a summary of counts."""
    out = Path(out)
    config = SynthConfig(quarters=quarters, households=households, seed=seed, **config_overrides)
    world = build_world(config)
    rng = np.random.default_rng(seed + 1)
    region_rng = np.random.default_rng(seed + 2)
    region_names = (
        sorted(world.geography.select(regions.region_of(pl.col("county_code"))).to_series().unique().to_list()) if regions else []
    )
    options = writer_options or WriterOptions()
    records: dict[int, dict[str, pl.DataFrame]] = {}
    metas = []
    counts: dict[str, dict[str, int]] = {}
    # The truth needs the records of people who are ever on the roster (links and warnings
    # are about them) and the rows meant for quarantine; not the millions of settlements of
    # everyone else, which are written and let go.
    on_roster = pl.concat([world.roster_members(k).select("person_id") for k in range(len(quarters))]).unique()
    # The linked departments, as the registry declares them; the truth keeps their records.
    linked = {spec.source for spec in linked_sources()}
    for q, quarter in enumerate(quarters):
        quarter_dir = out / str(quarter)
        parts: dict[str, list[pl.DataFrame]] = {}
        counts[str(quarter)] = {}
        planned = deliveries(rng, world, q)
        if world.settlements.height <= MEDICAL_CHUNK_ROWS:
            planned = list(planned)  # built before written, the order the seeds were made with
        for delivery in planned:
            if regions:
                parts_written = [
                    write_delivery(rng, part, out / name / str(quarter), str(quarter), options, prefix=f"{name}_")
                    for name, part in _split_by_region(regions, delivery, region_names, region_rng).items()
                ]
                meta = pl.concat(parts_written, how="diagonal_relaxed") if parts_written else pl.DataFrame()
            else:
                meta = write_delivery(rng, delivery, quarter_dir, str(quarter), options)
            written = meta.height if meta.height else delivery.records.height  # duplicate rows included
            kept = delivery.records
            if delivery.source in linked:
                # and the hazard records (devtools/synth/hazards.py), whoever they are about
                ours = pl.col("__person_id").is_in(on_roster["person_id"].implode()) | pl.col("__hazard").is_not_null()
                kept = kept.filter(ours)
                meta = meta.with_columns(pl.lit(q).alias("q"))
                keep = ours
                if "__expect_quarantine" in meta.columns:
                    keep = keep | pl.col("__expect_quarantine").is_not_null()
                meta = meta.filter(keep)
                metas.append(meta)
            parts.setdefault(delivery.source, []).append(kept)
            counts[str(quarter)][delivery.source] = counts[str(quarter)].get(delivery.source, 0) + written
        records[q] = {source: pl.concat(frames) if len(frames) > 1 else frames[0] for source, frames in parts.items()}
    truth = Truth(world, records, pl.concat(metas, how="diagonal_relaxed"))
    truth_dir = out / "truth"
    truth_dir.mkdir(parents=True, exist_ok=True)
    links = pl.concat([truth.links(q) for q in range(len(quarters))])
    warnings = pl.concat([truth.warnings(q) for q in range(len(quarters))]).sort("quarter", "rule_code", "household_id", "member_id")
    quarantine = (
        pl.concat(metas, how="diagonal_relaxed")
        .filter(pl.col("__expect_quarantine").is_not_null())
        .select(
            pl.col("q").map_elements(lambda k: str(quarters[k]), return_dtype=pl.Utf8).alias("quarter"),
            "source", "file", "record_key", pl.col("__expect_quarantine").alias("reason_code"),
        )
    )
    links.write_csv(truth_dir / "links.csv")
    roster_persons = pl.concat(
        [
            truth.roster(q).select(pl.lit(str(quarter)).alias("quarter"), "member_id", pl.col("person_id").cast(pl.Utf8).alias("person_id"))
            for q, quarter in enumerate(quarters)
        ]
    )
    roster_persons.write_csv(truth_dir / "roster_persons.csv")
    warnings.write_csv(truth_dir / "warnings.csv")
    hazards = truth.hazards()
    hazards.write_csv(truth_dir / "hazards.csv")
    quarantine.write_csv(truth_dir / "quarantine.csv")
    summary = {
        "quarters": [str(q) for q in quarters],
        "households": households,
        "seed": seed,
        "rules_covered": RULES_COVERED,
        "rows_delivered": counts,
        "links": links.group_by("link_class").len().sort("link_class").rows(),
        "hazard_records": hazards.group_by("source", "hazard").len().sort("source", "hazard").rows(),
        "warnings": warnings.group_by("rule_code").len().sort("rule_code").rows(),
        "expected_quarantine": quarantine.height,
        "config": {k: v for k, v in asdict(config).items() if k not in {"quarters", "counties"}},
    }
    if regions:
        summary["regions"] = region_names
    missing = not_synthesised({source for quarter_counts in counts.values() for source in quarter_counts})
    if missing:
        summary["not_synthesised"] = missing
    (truth_dir / "manifest.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2), encoding="utf-8")
    (truth_dir / "README.md").write_text(TRUTH_README, encoding="utf-8")
    return summary


def not_synthesised(delivered: set[str]) -> list[str]:
    """The departments the registry declares that the generator wrote nothing for.

    The generator synthesises the departments it was written for (devtools/synth/extracts.py);
    a department declared only by its spec (a deployment's own, DOUDI_DEPARTMENTS_DIR)
    gets no synthetic data: its folder is absent from the inbox, which is no error, and the
    summary names it. Optional sources not delivered (standards, verifications) are not
    listed: leaving them out is how the generator means them."""
    return [spec.source for spec in all_sources() if spec.required_folder and spec.source not in delivered]


TRUTH_README = """# truth/ — what the pipeline must find (synthetic data only)

- `links.csv`: quarter, source, record_key, member_id, link_class, id_damage, roster_id_kind.
  Every delivered record about a person on that quarter's roster (one row per member row).
  link_class: exact (cleaned IDs agree), fuzzy (one side's ID damaged, recoverable with the
  name and the rest of the ID), unrecoverable (no usable identity, or one the name rule
  does not accept alone: a changed name, a twin-like ID). name_variant: how the record
  writes the name; corroborated: the ID and name agree outright.
- `warnings.csv`: quarter, rule_code, household_id, member_id, severity, due_date, requires.
  RULES.md applied to the true state using recoverable links only; `requires` says whether
  the warning rests on exact links only, on a fuzzy link, or on the roster alone. D01 is
  red only on a death record whose ID and name agree outright.
- `hazards.csv`: delivered_quarter, source, record_key, hazard, person_id — the identity
  hazards the generator planted (devtools/synth/hazards.py): `id_copied` (another person's
  record under a member's ID), `newborn` (a baby's settlement under the mother's ID),
  `sibling` (a twin's or sibling's record, its ID one or two digits from the member's) and
  `renamed` (the member's own record under a changed name). person_id is the roster person
  whose ID the record carries, or whose sibling it is. The first three must never be
  linked to that person's member rows; the first, second and fourth are Q02 warnings.
- `roster_persons.csv`: quarter, member_id, person_id — which member rows are the same
  real person (one person enrolled in two households has two rows with one person_id).
- `quarantine.csv`: rows that were made unreadable on purpose (and exact duplicate rows):
  the pipeline must quarantine them, with the reason code given.
- `manifest.json`: the generator's settings and counts.
"""
