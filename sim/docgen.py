"""Generate ``docs/scenario-reference.md`` from the scenario schema, so the reference never drifts.

    python sim/docgen.py           # rewrite docs/scenario-reference.md
    python sim/docgen.py --check   # exit 1 (and say so) if the file is stale

A developer tool: it lives beside the other study and maintenance scripts, outside the installed
package, and reads the schema of the installed launderflow.

The reference is built by walking :class:`launderflow.scenario.schema.Scenario`: every nested
model and every member of a discriminated union (venues by ``kind``, hops by ``hop``, delays by
``dist``, interventions by ``kind``) gets a section with one table row per field — its type in
plain words, unit, default, the allowed values read from the field's constraints, and its
description (or the sentence of the model docstring that names it). Cross-field checks are read
from the models' validators. Each venue, hop, delay and intervention kind carries a YAML example
(``EXAMPLES`` below); ``tests/test_docs.py`` validates every example against the schema.
"""

from __future__ import annotations

import ast
import inspect
import re
import textwrap
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Union

import annotated_types as at
from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo

from launderflow.scenario import schema as s
from launderflow.units import UNITS

import pagegen  # sim/pagegen.py: run as `python sim/...`, sim/ is on the path

OUTPUT = Path(__file__).resolve().parents[1] / "docs" / "scenario-reference.md"  # sim/docgen.py -> the repository
COMMAND = "python sim/docgen.py"

# --- examples ------------------------------------------------------------------------------------
#
# A complete minimal scenario, and for every union member a fragment of a scenario. Fragments are
# merged into the complete scenario the way ``extends`` merges files (mappings key by key, lists
# replaced), and the result must validate, cross-references included (tests/test_docs.py).

BASE_EXAMPLE = """\
name: minimal
clock: {horizon: 30d, resolution: 1min, timeline_step: 6h}
chains:
  ethereum: {confirmation: 3min, fee_usd: 5}
  bitcoin: {confirmation: 30min, fee_usd: 2}
assets:
  ETH: {chain: ethereum, price_usd: 3000}
  USDC: {chain: ethereum, price_usd: 1, freezable: true}
  BTC: {chain: bitcoin, price_usd: 60000}
venues:
  otc_desk: {kind: otc, jurisdiction: offshore, delay: 2d, haircut: 0.05}
thefts:
  - name: hack
    victim: Some bridge
    stolen: [{asset: ETH, amount: 1000}, {asset: USDC, amount: 500000}]
    discovered_after: 6h
playbook:
  - {hop: split, wallets: 20, delay: {dist: exponential, mean: 2h}}
  - {hop: cash_out, venue: otc_desk}
tracing:
  hop_success: {split: 0.97, cash_out: 0.9}
"""

EXAMPLES: dict[str, str] = {
    # delays
    "FixedDelay": """\
playbook:
  - {hop: transfer, delay: 2h}                      # shorthand for {dist: fixed, value: 2h}
  - {hop: transfer, delay: {dist: fixed, value: 90min}}
""",
    "ExponentialDelay": """\
playbook:
  - {hop: split, wallets: 50, delay: {dist: exponential, mean: 2h}}
""",
    "LogNormalDelay": """\
playbook:
  - {hop: transfer, delay: {dist: lognormal, median: 6h, sigma: 0.8}}
""",
    "UniformDelay": """\
playbook:
  - {hop: wait, delay: {dist: uniform, low: 5d, high: 30d}}
""",
    # venues
    "OtcVenue": """\
venues:
  garantex: {kind: otc, jurisdiction: RU, delay: 1d, haircut: 0.05, capacity_usd_per_day: 5000000}
  p2p_desks: {kind: otc, jurisdiction: offshore, delay: 2d, haircut: 0.07, capacity_pool: dprk_brokers}
capacity_pools:
  dprk_brokers: {usd_per_day: 1700000, note: "TRM Labs: ~$51 M a month through OTC brokers"}
""",
    "DexVenue": """\
venues:
  uniswap: {kind: dex, fee: 0.003, pool_depth_usd: 150000000}
""",
    "BridgeVenue": """\
venues:
  thorchain: {kind: bridge, jurisdiction: none, halts: true, delay: {dist: lognormal, median: 30min, sigma: 0.5}, fee: 0.002}
""",
    "ExchangeVenue": """\
venues:
  binance: {kind: exchange, jurisdiction: offshore, kyc: 0.7, compliance: 0.6, freeze_latency: 2h, delay: 6h, fee: 0.002}
  exch: {kind: exchange, jurisdiction: offshore, kyc: 0, freezes: false, delay: 1h}   # eXch-like, no KYC
""",
    "IssuerVenue": """\
venues:
  circle: {kind: issuer, jurisdiction: US, asset: USDC, freeze_latency: 3h, compliance: 0.5}
""",
    "CustodialMixerVenue": """\
venues:
  sinbad: {kind: custodial_mixer, jurisdiction: offshore, delay: {dist: exponential, mean: 2d}, fee: 0.025, payouts: 3}
""",
    "PoolMixerVenue": """\
venues:
  tornado:
    kind: pool_mixer
    asset: ETH
    denominations: [1, 10, 100]
    honest_deposits_per_day: 1000
    honest_pool_weights: [0.6, 0.3, 0.1]
    delay: {dist: exponential, mean: 3d}
    demixing: {quick_threshold: 12h}
    habits: {reuses_addresses: true, gas_fingerprint: true}
""",
    # hops
    "TransferHop": """\
playbook:
  - {hop: transfer, delay: {dist: exponential, mean: 1d}}
""",
    "SplitHop": """\
playbook:
  - {hop: split, wallets: 23, concentration: 5, delay: {dist: exponential, mean: 2d}}
""",
    "PeelHop": """\
playbook:
  - {hop: peel, length: 4, fraction: 0.1, delay: {dist: exponential, mean: 6h}}
""",
    "WaitHop": """\
playbook:
  - {hop: wait, delay: {dist: uniform, low: 5d, high: 30d}}
""",
    "DormantHop": """\
playbook:
  - {hop: split, wallets: 200}
  - {hop: dormant, waves: 4, first: 30d, every: 30d, spread: {dist: uniform, low: 0h, high: 3d}, quiet: 14d}
""",
    "ConsolidateHop": """\
playbook:
  - {hop: split, wallets: 100}
  - {hop: consolidate, wallets: 5, delay: 1d}
""",
    "CashOutHop": """\
venues:
  garantex: {kind: otc, jurisdiction: RU, delay: 1d, haircut: 0.05}
  binance: {kind: exchange, jurisdiction: offshore, delay: 6h}
playbook:
  - {hop: cash_out, venue: [binance, garantex], retry: 6h}   # garantex when binance refuses
""",
    "SwapHop": """\
venues:
  uniswap: {kind: dex, fee: 0.003, pool_depth_usd: 20000000}
playbook:
  - {hop: swap, venue: uniswap, to: ETH}            # stablecoins out before the issuer can freeze them
""",
    "BridgeHop": """\
venues:
  thorchain: {kind: bridge, jurisdiction: none, delay: 1h, fee: 0.002}
playbook:
  - {hop: bridge, venue: thorchain, to: BTC, delay: {dist: exponential, mean: 12h}}
""",
    "ExchangeHop": """\
venues:
  binance: {kind: exchange, jurisdiction: offshore, freeze_latency: 2h, delay: 6h}
  exch: {kind: exchange, jurisdiction: offshore, kyc: 0, freezes: false, delay: 1h}
playbook:
  - {hop: exchange, venue: [binance, exch], to: BTC}
""",
    "MixHop": """\
venues:
  tornado: {kind: pool_mixer, asset: ETH}
  thorchain: {kind: bridge, jurisdiction: none, delay: 1h}
playbook:
  - {hop: mix, venue: [tornado, thorchain], to: BTC}   # across chains when the mixer refuses
""",
    "BranchHop": """\
venues:
  thorchain: {kind: bridge, jurisdiction: none, delay: 1h}
  garantex: {kind: otc, jurisdiction: RU, delay: 1d}
playbook:
  - hop: branch
    branches:
      - share: 0.6
        playbook: [{hop: bridge, venue: thorchain, to: BTC}]
      - share: 0.4
        playbook: [{hop: peel, length: 5, fraction: 0.1}]
  - {hop: cash_out, venue: garantex}
""",
    "ServiceHop": """\
venues:
  tornado: {kind: pool_mixer, asset: ETH}
  sinbad: {kind: custodial_mixer, jurisdiction: offshore, fee: 0.025}
  thorchain: {kind: bridge, jurisdiction: none, delay: 1h, fee: 0.002}
market:
  choice: {cost_weight: 100, delay_weight: 0.1, risk_weight: 10, inertia: 0.5, memory: 30d}
  services:
    tornado: {function: mixing, perceived_risk: 0.1}
    sinbad: {function: mixing, opens: 60d, note: "launched Oct 2022 (Elliptic)"}
    thorchain: {function: cross_chain}
playbook:
  - {hop: service, function: [mixing, cross_chain], to: BTC}   # mixers or bridges, by the choice rule
""",
    # interventions
    "Designation": """\
venues:
  tornado: {kind: pool_mixer, asset: ETH}
interventions:
  - {kind: designation, venue: tornado, at: 0h, complying: [US, EU, JP, KR], volume_drop: 0.7}
""",
    "Operators": """\
venues:
  tornado: {kind: pool_mixer, asset: ETH}
interventions:
  - {kind: operators, venue: tornado, at: 30d, honest_rate_factor: 0.6, relayer_fee_factor: 2}
""",
    "Seizure": """\
interventions:
  - {kind: seizure, at: 150d, jurisdictions: [US, EU, offshore], share: 0.8}
""",
    "Shutdown": """\
venues:
  sinbad: {kind: custodial_mixer, jurisdiction: offshore}
interventions:
  - {kind: shutdown, venue: sinbad, at: 60d}
""",
    "Halt": """\
venues:
  thorchain: {kind: bridge, jurisdiction: none, halts: true}
interventions:
  - {kind: halt, venue: thorchain, at: 2h, after_discovery: true, duration: 3d}
""",
    "Defences": """\
interventions:
  - {kind: defences, at: 0h, kyc: 1.0, compliance: 0.95, freeze_latency: {dist: lognormal, median: 1h, sigma: 0.5}}
""",
    # other models
    "Tracing": """\
tracing:
  hop_success: {split: 0.97, bridge: 0.7, custodial_mixer: 0.2}
  tracers:
    - {name: analytics, kind: analytics, latency: 2h, capacity_per_hour: 150}
    - {name: bounty, kind: crowd, latency: 6h, capacity_per_hour: 300, report_quality: 0.6, joins_after: 1d}
  sharing: {latency: 15min, coverage: all}
  resume_at_kyc: 0.5
""",
    "Repeat": """\
thefts:
  - name: salaries
    victim: employers of remote IT contractors
    stolen: [{asset: USDC, amount: 5000}]
    repeat: {count: 6000, every: {dist: exponential, mean: 43min}}
    discovered_after: 90d
""",
    # prices
    "PricePath": """\
prices:
  ETH: {model: gbm, drift_per_year: 0, volatility_per_year: 0.6, step: 1d}   # drawn per replication
  # or a dated series in a file beside the scenario: {series: prices/eth_ronin_2022.csv}
""",
    "PricePoint": """\
clock: {horizon: 30d, start: 2022-03-23}    # dates count from clock.start
prices:
  ETH: {points: [{date: 2022-03-23, price_usd: 3000}, {date: 2022-09-08, price_usd: 1500}]}
  USDC: {points: [{time: 0h, price_usd: 1.0}, {time: 10d, price_usd: 0.97}]}
""",
}

# Units that cannot be read from a field's name or type.
UNIT_HINTS: dict[tuple[str, str], str] = {
    ("StolenAmount", "amount"): "units of the asset",
    ("PoolMixerVenue", "denominations"): "units of the pool's asset",
    ("PoolMixerVenue", "initial_notes"): "notes",
    ("SplitHop", "wallets"): "wallets",
    ("ConsolidateHop", "wallets"): "wallets",
    ("CustodialMixerVenue", "payouts"): "wallets",
    ("PricePath", "drift_per_year"): "per year",
    ("PricePath", "volatility_per_year"): "per √year",
    ("PricePoint", "price_usd"): "USD per unit",
}


# --- walking the schema --------------------------------------------------------------------------


@dataclass(frozen=True)
class UnionNode:
    """A discriminated union of models (``Venue``, ``Hop``, ``Delay``, ``Intervention``)."""

    name: str
    members: tuple[type[BaseModel], ...]
    discriminator: str
    doc: str = ""


def _flatten(tp: Any, meta: list[Any] | None = None) -> tuple[Any, list[Any]]:
    """Strip ``Annotated`` layers; return the bare type and all metadata (FieldInfos expanded)."""
    out = list(meta or [])
    while typing.get_origin(tp) is typing.Annotated:
        args = typing.get_args(tp)
        tp, out = args[0], out + list(args[1:])
    expanded: list[Any] = []
    for item in out:
        if isinstance(item, FieldInfo):
            expanded.append(item)
            expanded.extend(item.metadata)
        else:
            expanded.append(item)
    return tp, expanded


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def _discriminator(meta: list[Any]) -> str | None:
    for item in meta:
        if isinstance(item, FieldInfo) and isinstance(item.discriminator, str):
            return item.discriminator
    return None


def _validator_funcs(meta: list[Any]) -> list[Any]:
    return [m.func for m in meta if isinstance(m, BeforeValidator)]


def _is_duration(meta: list[Any]) -> bool:
    return s._duration in _validator_funcs(meta)


def _union_name(members: tuple[type, ...]) -> str:
    """The schema module's name for this union (``Venue``, ``Hop``, ...)."""
    for name, obj in vars(s).items():
        if typing.get_origin(obj) is typing.Annotated:
            inner = typing.get_args(obj)[0]
            if _is_union(inner) and tuple(typing.get_args(inner)) == members:
                return name
    return " | ".join(m.__name__ for m in members)


def _union_node(tp: Any, meta: list[Any], discriminator: str | None) -> UnionNode | None:
    if not _is_union(tp) or discriminator is None:
        return None
    members = tuple(typing.get_args(tp))
    if not all(isinstance(m, type) and issubclass(m, BaseModel) for m in members):
        return None
    docs = [inspect.getdoc(f) for f in _validator_funcs(meta)]
    return UnionNode(_union_name(members), members, discriminator, " ".join(d for d in docs if d))


def _field_type(field: FieldInfo) -> tuple[Any, list[Any]]:
    tp, meta = _flatten(field.annotation, list(field.metadata))
    if field.discriminator is not None and isinstance(field.discriminator, str):
        meta.append(FieldInfo(discriminator=field.discriminator))
    return tp, meta


def _references(tp: Any, meta: list[Any]) -> list[Any]:
    """Models and discriminated unions a (flattened) type refers to, in order."""
    node = _union_node(tp, meta, _discriminator(meta))
    if node is not None:
        return [node]
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return [tp]
    out: list[Any] = []
    if _is_union(tp) or typing.get_origin(tp) in (list, dict, tuple):
        for arg in typing.get_args(tp):
            out += _references(*_flatten(arg))
    return out


def walk(root: type[BaseModel] = s.Scenario) -> list[Any]:
    """Every model and union reachable from ``root``: a union's members follow it, and what a
    group refers to comes after the whole group (depth first, in field order)."""
    order: list[Any] = []
    seen: set[Any] = set()

    def visit(node: Any) -> None:
        if node in seen:
            return
        seen.add(node)
        order.append(node)
        members = node.members if isinstance(node, UnionNode) else (node,)
        if isinstance(node, UnionNode):
            for m in members:
                seen.add(m)
                order.append(m)
        children: list[Any] = []
        for m in members:
            for field in m.model_fields.values():
                children += _references(*_field_type(field))
        for child in children:
            visit(child)

    visit(root)
    return order


def models(root: type[BaseModel] = s.Scenario) -> list[type[BaseModel]]:
    """Every model reachable from ``root`` (union members included)."""
    return [n for n in walk(root) if not isinstance(n, UnionNode)]


def unions(root: type[BaseModel] = s.Scenario) -> list[UnionNode]:
    return [n for n in walk(root) if isinstance(n, UnionNode)]


def tag_of(model: type[BaseModel], discriminator: str) -> str:
    """The literal value of a union member's discriminator field (``otc`` for OtcVenue)."""
    return typing.get_args(model.model_fields[discriminator].annotation)[0]


def anchor(node: Any) -> str:
    name = node.name if isinstance(node, UnionNode) else node.__name__
    return name.lower()


# --- words -----------------------------------------------------------------------------------------


def _num(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int) and value > 2**20 and value & (value - 1) == 0:
        return f"2^{value.bit_length() - 1}"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value) if isinstance(value, float) else str(value)


def hours(h: float) -> str:
    """A duration in hours in the shortest exact unit: ``30d``, ``24h``, ``1min``."""
    if h == 0:
        return "0h"
    if h >= 168 and (h / 24).is_integer():
        return f"{int(h / 24)}d"
    if float(h).is_integer():
        return f"{int(h)}h"
    minutes = round(h * 60, 9)
    if minutes.is_integer():
        return f"{int(minutes)}min"
    seconds = round(h * 3600, 6)
    if seconds.is_integer():
        return f"{int(seconds)}s"
    return f"{h:g}h"


_PLURAL = {"number": "numbers", "integer": "integers", "text": "texts", "name": "names",
           "true/false": "true/false values", "jurisdiction code": "jurisdiction codes"}
_SELF_EXPLAINED = {"name", "jurisdiction code"}  # their pattern is explained once, at the top


def _base_words(tp: Any, meta: list[Any]) -> str:
    """Plain words for a (flattened) type, constraints of nested items included."""
    node = _union_node(tp, meta, _discriminator(meta))
    if node is not None:
        if node.name == "Delay":
            return "[delay](#delay): a duration (e.g. '6h') or a distribution"
        return f"[{node.name}](#{anchor(node)})"
    if _is_duration(meta):
        return "duration (e.g. '6h')"
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return f"[{tp.__name__}](#{anchor(tp)})"
    origin = typing.get_origin(tp)
    if origin is Literal:
        values = [f"`{v}`" for v in typing.get_args(tp)]
        return values[0] if len(values) == 1 else "one of " + ", ".join(values)
    if _is_union(tp):
        parts = [a for a in typing.get_args(tp) if a is not type(None)]
        words = " or ".join(_item_words(*_flatten(a)) for a in parts)
        return words + (" or `null`" if len(parts) < len(typing.get_args(tp)) else "")
    if origin is list:
        item = _item_words(*_flatten(typing.get_args(tp)[0]), plural=True)
        if s._one_or_many in _validator_funcs(meta):
            return f"{_item_words(*_flatten(typing.get_args(tp)[0]))}, or a list of {item}"
        return f"list of {item}"
    if origin is dict:
        key, value = typing.get_args(tp)
        return f"mapping of {_item_words(*_flatten(key))} → {_item_words(*_flatten(value))}"
    pattern = _pattern(meta)
    if tp is str and pattern == s.NAME_PATTERN:
        return "name"
    if tp is str and pattern is not None and "offshore" in pattern:
        return "jurisdiction code"
    return {float: "number", int: "integer", str: "text", bool: "true/false"}.get(tp, getattr(tp, "__name__", str(tp)))


def _item_words(tp: Any, meta: list[Any], plural: bool = False) -> str:
    words = _base_words(tp, meta)
    limits = [] if words in _SELF_EXPLAINED else _constraints(tp, meta, nested=True)
    if plural:
        words = _PLURAL.get(words, words)
    return f"{words} ({', '.join(limits)})" if limits else words


def _pattern(meta: list[Any]) -> str | None:
    for item in meta:
        pattern = getattr(item, "pattern", None)
        if isinstance(pattern, str):
            return pattern
    return None


def _code(text: str) -> str:
    return "`" + text + "`"


def _cell(text: str) -> str:
    """Text that survives a markdown table cell (pipes escaped, also inside code spans)."""
    return text.replace("|", "\\|").replace("\n", " ")


def _constraints(tp: Any, meta: list[Any], nested: bool = False) -> list[str]:
    """The allowed values, read from the field's constraints."""
    out: list[str] = []
    bounds: dict[str, Any] = {}
    for item in meta:
        for attr in ("gt", "ge", "lt", "le"):
            if isinstance(item, getattr(at, attr.capitalize())):
                bounds[attr] = getattr(item, attr)
    low = f"{_num(bounds['ge'])} ≤ " if "ge" in bounds else f"{_num(bounds['gt'])} < " if "gt" in bounds else ""
    high = f" ≤ {_num(bounds['le'])}" if "le" in bounds else f" < {_num(bounds['lt'])}" if "lt" in bounds else ""
    if low and high:
        out.append(f"{low}x{high}")
    elif low:
        out.append(("≥ " if "ge" in bounds else "> ") + _num(bounds.get("ge", bounds.get("gt"))))
    elif high:
        out.append(high.strip())
    if _is_duration(meta) and not nested:
        out.append("≥ 0")
    is_text = tp is str
    for item in meta:
        if isinstance(item, at.MinLen) and item.min_length > 0:
            what = "character" if is_text else "item"
            out.append(f"at least {item.min_length} {what}{'s' if item.min_length > 1 else ''}")
        if isinstance(item, at.MaxLen):
            out.append(f"at most {item.max_length} {'characters' if is_text else 'items'}")
    pattern = _pattern(meta)
    if pattern is not None:
        out.append("pattern " + _code(pattern))
    if not nested and typing.get_origin(tp) is Literal and len(typing.get_args(tp)) == 1:
        out.append(_code(str(typing.get_args(tp)[0])))
    return out


def _unit(model: type[BaseModel], name: str, tp: Any, meta: list[Any]) -> str:
    if (model.__name__, name) in UNIT_HINTS:
        return UNIT_HINTS[(model.__name__, name)]
    inner = tp
    if _is_union(tp):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            inner, meta = _flatten(args[0], meta)
    if _is_duration(meta):
        return "hours"
    node = _union_node(inner, meta, _discriminator(meta))
    if node is not None and node.name == "Delay":
        return "hours"
    if name.endswith("_usd_per_day"):
        return "USD per day"
    if name.endswith("_usd"):
        return "USD"
    if name.endswith("_per_day"):
        return "per day"
    if name.endswith("_per_hour"):
        return "per hour"
    return ""


def _is_default_model(value: BaseModel) -> bool:
    try:
        return value == type(value)()
    except Exception:
        return False


def _yaml(value: Any, meta: list[Any] | None = None) -> str:
    """A default value the way a scenario author would write it (durations with units)."""
    meta = meta or []
    if value is None:
        return "null"
    if value == "":
        return '""'
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, BaseModel):
        if getattr(value, "dist", None) == "fixed":
            return hours(value.value)  # type: ignore[attr-defined]
        parts = []
        for name, field in type(value).model_fields.items():
            v = getattr(value, name)
            if field.is_required() or v != field.get_default(call_default_factory=True):
                parts.append(f"{name}: {_yaml(v, _field_type(field)[1])}")
        return "{" + ", ".join(parts) + "}"
    if isinstance(value, (int, float)):
        return hours(value) if _is_duration(meta) else _num(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_yaml(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_yaml(v)}" for k, v in value.items()) + "}"
    return str(value)


def _default(field: FieldInfo, meta: list[Any]) -> str:
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True)
    if isinstance(value, BaseModel) and not getattr(value, "dist", None) and _is_default_model(value):
        return "all defaults"
    if isinstance(value, BaseModel) and not getattr(value, "dist", None):
        return _code(_yaml(value, meta)) + "; the rest at its defaults"
    if value == [] or value == {}:
        return _code(_yaml(value)) + " (none)"
    inner_meta = meta
    if _is_union(field.annotation):  # Optional[Duration]: look inside
        args = [a for a in typing.get_args(field.annotation) if a is not type(None)]
        if len(args) == 1:
            inner_meta = _flatten(args[0], meta)[1]
    return _code(_yaml(value, inner_meta))


def _markdown(text: str) -> str:
    """reST-ish docstring text to markdown: ``x`` -> `x`, lines joined into paragraphs."""
    text = text.replace("``", "`")
    paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", text.strip())]
    return "\n\n".join(paragraphs)


def _own_doc(model: type[BaseModel]) -> str:
    """The model's own docstring (not one inherited from a base class)."""
    doc = model.__dict__.get("__doc__")
    return inspect.cleandoc(doc) if doc else ""


def _sentences(text: str) -> list[str]:
    text = " ".join(text.split())
    protected = text.replace("e.g. ", "e.g.\0").replace("i.e. ", "i.e.\0")
    return [p.replace("\0", " ") for p in re.split(r"(?<=[.;])\s+(?=[A-Z`(])", protected) if p]


MAX_BORROWED = 140  # a docstring sentence longer than this stays above the table, not in a row


def _description(model: type[BaseModel], name: str, field: FieldInfo, tp: Any, meta: list[Any]) -> str:
    """The field's description; else the short docstring sentence naming it; else a link."""
    if field.description:
        return field.description.replace("``", "`")
    hits = [x for x in _sentences(_own_doc(model)) if f"``{name}``" in x and len(x) <= MAX_BORROWED]
    if hits:
        return " ".join(hits).replace("``", "`")
    refs = _references(tp, meta)
    if refs:
        node = refs[0]
        title = node.name if isinstance(node, UnionNode) else node.__name__
        doc = node.doc if isinstance(node, UnionNode) else _own_doc(node)
        first = _sentences(doc)[0].replace("``", "`") if doc else ""
        return f"See [{title}](#{anchor(node)}). {first}".strip()
    return ""


def _render_message(arg: ast.expr, func_tree: ast.AST) -> str | None:
    """The text of an error message; an f-string's loop variable over constants is spelled out."""
    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
        return arg.value
    if not isinstance(arg, ast.JoinedStr):
        return None
    loops = {node.target.id: [e.value for e in node.iter.elts if isinstance(e, ast.Constant)]
             for node in ast.walk(func_tree)
             if isinstance(node, ast.For) and isinstance(node.target, ast.Name) and isinstance(node.iter, ast.Tuple)}
    parts = []
    for value in arg.values:
        if isinstance(value, ast.Constant):
            parts.append(str(value.value))
        elif isinstance(value.value, ast.Name) and loops.get(value.value.id):
            parts.append(" / ".join(f"`{v}`" for v in loops[value.value.id]))
        else:
            parts.append("…")
    return "".join(parts)


def _checks(model: type[BaseModel]) -> list[str]:
    """Messages of the model's own validators (cross-field rules), read from their source."""
    decorators = model.__pydantic_decorators__
    funcs = [d.func for d in (*decorators.model_validators.values(), *decorators.field_validators.values())]
    messages: list[str] = []
    for func in funcs:
        func = getattr(func, "__func__", func)
        if func.__qualname__.split(".")[0] != model.__name__:
            continue  # inherited: documented with the base
        tree = ast.parse(textwrap.dedent(inspect.getsource(func)))
        for node in ast.walk(tree):
            if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and node.exc.args:
                text = _render_message(node.exc.args[0], tree)
                if text:
                    messages.append(text.replace("``", "`"))
    return messages


# --- sections --------------------------------------------------------------------------------------


def _table(model: type[BaseModel]) -> list[str]:
    lines = ["| field | type | unit | default | allowed | description |", "|---|---|---|---|---|---|"]
    for name, field in model.model_fields.items():
        tp, meta = _field_type(field)
        row = [
            _code(name),
            _base_words(tp, meta),
            _unit(model, name, tp, meta),
            _default(field, meta),
            "; ".join(_constraints(tp, meta)),
            _description(model, name, field, tp, meta),
        ]
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return lines


def _example(model: type[BaseModel]) -> list[str]:
    text = EXAMPLES.get(model.__name__)
    if text is None:
        return []
    return ["", "Example:", "", f"<!-- example: {model.__name__} -->", "```yaml", text.rstrip("\n"), "```"]


def _model_section(model: type[BaseModel], level: str, union: UnionNode | None = None) -> list[str]:
    if union is not None:
        title = f"{level} `{union.discriminator}: {tag_of(model, union.discriminator)}` ({model.__name__})"
    else:
        title = f"{level} {model.__name__}"
    out = [f'<a id="{anchor(model)}"></a>', "", title, ""]
    doc = _own_doc(model)
    if doc:
        out += [_markdown(doc), ""]
    out += _table(model)
    checks = _checks(model)
    if checks:
        out += ["", "Also checked:", ""] + [f"* {c}" for c in checks]
    out += _example(model)
    out.append("")
    return out


def _union_section(node: UnionNode) -> list[str]:
    tags = ", ".join(f"[`{tag_of(m, node.discriminator)}`](#{anchor(m)})" for m in node.members)
    out = [f'<a id="{anchor(node)}"></a>', "", f"## {node.name}", "",
           f"One of the following, chosen by its `{node.discriminator}` field: {tags}."]
    if node.doc:
        out += ["", _markdown(node.doc)]
    out.append("")
    return out


def _venue_hops() -> list[str]:
    lines = ["| hop | venue kinds it accepts (in `venue`) |", "|---|---|"]
    for hop, kinds in s.VENUE_FOR_HOP.items():
        lines.append(f"| `{hop}` | " + ", ".join(f"`{k}`" for k in kinds) + " |")
    return lines


HEADER = f"""\
# Scenario file reference

<!-- GENERATED FILE, do not edit by hand: `{COMMAND}` rebuilds it from
     src/launderflow/scenario/schema.py (tests/test_docs.py fails when it is stale). -->

Generated from the scenario schema (`src/launderflow/scenario/schema.py`) by
`{COMMAND}`; run that command after changing the schema. What each parameter does
inside the simulation, with formulas and the sources of the defaults, is in
[model.md](model.md). `launderflow schema` prints the same schema as JSON Schema and
`launderflow validate FILE` checks a file against it.

Conventions:

* A scenario is one YAML mapping; unknown keys are errors, and so are duplicate keys.
* **Durations** are hours: write a number of hours or a number with a unit
  ({", ".join(f"`{u}`" for u in UNITS)}), e.g. `90s`, `15min`, `6h`, `2.5d`, `1w`.
  A **delay** is a duration (a fixed delay) or a [distribution](#delay).
* **Names** (of chains, assets, venues, thefts, tracers) start with a letter and contain letters,
  digits, `_`, `.` and `-`.
* `extends: other.yaml` (read by the loader, not part of the schema) merges the scenario over
  another file: mappings merge key by key, lists are replaced whole. `launderflow run --set
  FIELD=VALUE` overrides one field (`--set clock.horizon=30d`, `--set playbook.0.wallets=100`).
* **Prices.** An asset's `price_usd` is its price at the theft: every outcome is kept in these
  theft-day dollars. A [`prices`](#pricepath) path adds the day's dollars beside them. A `series`
  file (read by the loader like `extends`: relative to the file that names it, under the
  scenario's directory or the current directory, no symbolic links) is a CSV (`#` lines are
  comments) or Parquet table with a `date` column (ISO dates, counted from `clock.start`) or a
  `time` column (hours or durations since time zero), a `price_usd` column and an optional `note`;
  rows in increasing time. A dated series needs `clock.start`; `prices` must name defined assets.
* Values stay in the range the model computes in float64: a `price_usd` is at most
  1e9, a stolen `amount` at most 1e15 units, a split's `concentration` between 0.05 and 1e12, and
  all thefts together (amount × price × instalments) steal between $1e-6 and $1e15.
* Names must refer to things defined elsewhere in the same scenario: an asset's `chain`, a stolen
  or venue `asset` and a hop's `to` must be defined, and so must every venue named in a hop, an
  intervention or `tracing.sharing.coverage`; a `halt` needs a venue with `halts: true`; a `mix`
  hop with a bridge among its venues needs `to`; `playbook` may be empty only if every theft has
  its own. A venue hop accepts only these venue kinds:

"""


def scenario_reference() -> str:
    """The whole reference as markdown, generated from the schema."""
    nodes = walk(s.Scenario)
    missing = [m.__name__ for n in nodes if isinstance(n, UnionNode) for m in n.members if m.__name__ not in EXAMPLES]
    if missing:
        raise RuntimeError(f"docgen.EXAMPLES has no YAML example for: {', '.join(missing)} (add one)")
    for model_name, field_name in UNIT_HINTS:
        if field_name not in getattr(s, model_name).model_fields:
            raise RuntimeError(f"docgen.UNIT_HINTS names {model_name}.{field_name}, which the schema no longer has")

    lines = HEADER.splitlines() + _venue_hops()
    lines += ["", "A complete minimal scenario (every example below is a fragment merged into it):", "",
              "<!-- example: Scenario -->", "```yaml", BASE_EXAMPLE.rstrip("\n"), "```", "", "## Contents", ""]
    member_of: dict[type, UnionNode] = {m: n for n in nodes if isinstance(n, UnionNode) for m in n.members}
    for node in nodes:
        if isinstance(node, UnionNode):
            lines.append(f"* [{node.name}](#{anchor(node)}) (by `{node.discriminator}`)")
        elif node in member_of:
            union = member_of[node]
            lines.append(f"  * [`{tag_of(node, union.discriminator)}`](#{anchor(node)})")
        else:
            lines.append(f"* [{node.__name__}](#{anchor(node)})")
    lines.append("")
    for node in nodes:
        if isinstance(node, UnionNode):
            lines += _union_section(node)
        elif node in member_of:
            lines += _model_section(node, "###", member_of[node])
        else:
            lines += _model_section(node, "##")
    return "\n".join(lines).rstrip("\n") + "\n"


def main(argv: list[str] | None = None) -> int:
    return pagegen.main(argv, command=COMMAND, what="the scenario reference", default=OUTPUT, generate=scenario_reference)

if __name__ == "__main__":
    raise SystemExit(main())
