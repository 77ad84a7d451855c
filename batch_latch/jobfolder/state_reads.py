"""What earlier commands settled and what ``undo`` must put back, read from the state the
ledger keeps instead of from every line of the job.

``Earlier`` (``rerun_rules.py``) holds the rules, over a job's lines; every rule is about one
customer at a time. So this reader hands it only the lines the answer depends on:

* the re-run rules: each asked customer's latest line (found through the log's customer
  index, one line a customer), and for the customers a run will send, their own lines
  (what they held before the job, writes left open) when ``customer_state`` says the job
  wrote to them;
* undo: ``customer_state`` (one row per customer the job wrote: its state, what it held
  before, whether that first change was written blind, the line of what it holds), and
  only for the few customers whose state is ``unknown`` (a write left open) their lines.

A job with lines of commands against another API (a command on a wrong URL left a write
open before the job was bound) is read line by line as before: the kept state does not
tell APIs apart.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj

from batch_latch.jobfolder.ledger import SENDING_KINDS, Ledger
from batch_latch.jobfolder.ledger_views import STATE_WORDS
from batch_latch.jobfolder.records import SCHEMA, Records, as_mask, no_records
from batch_latch.jobfolder.rerun_rules import Earlier, Origin, Targets, Unanswered
from batch_latch.outcome import Settled

_LATCHED, _UNKNOWN = STATE_WORDS.index("latched"), STATE_WORDS.index("unknown")

#: Each asked customer's latest line that counts for the re-run rules (an undo that restored
#: nothing does not: see ``Earlier.latest``), from the newest ``--fresh`` start on, as lines
#: of JSON (a million Python tuples would cost more than the query). A success's message is
#: never shown (it says "latched earlier"): not read.
_LATEST = f"""
SELECT CAST(group_concat(json_object('f', l.fusebill_id, 'g', l.geotab_id, 's', l.status,
  'h', l.http_status,
  'm', CASE WHEN l.status = 'success' AND l.change != 'undo' THEN '' ELSE l.message END,
  'k', l.error_key, 'c', l.change, 'p', l.previous, 't', l.at, 'x', l.settles), char(10))
  AS BLOB)
FROM json_each(?) a JOIN log l ON l.seq = (
  SELECT s.seq FROM log s WHERE s.fusebill_id = a.value AND s.command >= ?
    AND s.command IN (SELECT id FROM commands WHERE kind IN {SENDING_KINDS})
    AND (s.change != 'undo' OR s.status = 'success')
  ORDER BY s.seq DESC LIMIT 1)
"""
#: The customers the job latched and has not put back, with no write left open: what it
#: holds (the line ``holds_seq`` points at), what it held before, whether that was written
#: blind, and the sheet row (-1: none) and command of the line of what it holds; each
#: column as one text in one pass (a million Python tuples, or JSON objects, would cost
#: more than the query). The aggregates of one query see the rows in one order.
_LATCHED_NOW = f"""
SELECT count(*), group_concat(c.fusebill_id), {{texts}}, group_concat(c.blind IS NOT NULL, ''),
  group_concat(COALESCE(h.row, -1)), group_concat(h.command)
FROM customer_state c JOIN log h ON h.seq = c.holds_seq WHERE c.state = {_LATCHED}
"""
_SEPARATOR = "\x1f"  # ASCII's unit separator: never in a valid geotabId (a control character)
#: Its two texts: separated, or (when a value holds the separator itself) as JSON arrays.
_SEPARATED = (
    f"group_concat(h.geotab_id, char({ord(_SEPARATOR)})), "
    f"group_concat(COALESCE(c.before, ''), char({ord(_SEPARATOR)}))"
)
_AS_JSON = "json_group_array(h.geotab_id), json_group_array(COALESCE(c.before, ''))"
#: ``_LATCHED_NOW``'s columns as the targets take them.
_LATCHED_SCHEMA = pa.schema(
    [
        ("f", pa.int64()),
        ("g", pa.string()),
        ("b", pa.string()),
        ("n", pa.bool_()),
        ("r", pa.int64()),
        ("k", pa.int64()),
    ]
)
#: The latest latch by a run of each (customer, geotabId), with its sheet row and command.
_LATCH_LINES = """
SELECT l.fusebill_id, l.geotab_id, l.row, c.run_id FROM log l
JOIN commands c ON c.id = l.command WHERE l.row IS NOT NULL
  AND l.change IN ('new', 'relatch', 'unknown') AND c.kind = 'run'
  AND l.status IN ('success', 'writing') {only} ORDER BY l.seq
"""


#: ``records.SCHEMA`` as JSON holds it (``settles`` a number).
_JSON_SCHEMA = pa.schema([(f.name, pa.int64() if f.type == pa.bool_() else f.type) for f in SCHEMA])


def _from_json(lines: bytes | None) -> Records:
    """Records from lines of JSON objects in ``records.SCHEMA``'s fields."""
    if not lines:
        return no_records()
    options = pj.ParseOptions(explicit_schema=_JSON_SCHEMA, unexpected_field_behavior="error")
    table = pj.read_json(io.BytesIO(lines), parse_options=options)
    columns = [table[f.name].cast(f.type) for f in SCHEMA]  # settles: 0 or 1 to a bool
    return Records(pa.Table.from_arrays(columns, schema=SCHEMA))


def _numbers(text: str) -> np.ndarray:
    """Integers from a ``group_concat`` of them (commas between)."""
    parts = pc.split_pattern(pa.array([text], pa.large_string()), ",")
    return np.asarray(pc.cast(pc.list_flatten(parts), pa.int64()).to_numpy(), np.int64)


def _texts(text: str, count: int) -> pa.Array | None:
    """``count`` texts from a ``group_concat`` of them (``_SEPARATOR`` between); None when
    a text holds the separator itself (there are more parts than texts)."""
    parts = pc.list_flatten(pc.split_pattern(pa.array([text], pa.large_string()), _SEPARATOR))
    return pc.cast(parts, pa.string()) if len(parts) == count else None


def _ids(fids: Iterable[int]) -> str:
    return json.dumps([int(f) for f in fids])


class KeptState:
    """The re-run rules and undo's targets of the job's commands against ``base_url``."""

    def __init__(self, ledger: Ledger, base_url: str) -> None:
        self._ledger = ledger
        self._url = base_url
        fresh = ledger.query(
            f"SELECT MAX(id) FROM commands WHERE fresh = 1 AND base_url = ? AND kind IN "
            f"{SENDING_KINDS}",
            (base_url,),
        )[0][0]
        self._fresh = 0 if fresh is None else int(fresh)
        other = ledger.query(
            f"SELECT 1 FROM commands WHERE base_url != ? AND kind IN {SENDING_KINDS} LIMIT 1",
            (base_url,),
        )
        self._whole: tuple[Earlier, Earlier] | None = None
        if other:  # lines of another API may be in the state: every line, as before
            records, start = ledger.records(base_url)
            self._whole = Earlier(records.since(start)), Earlier(records)
        self._latched: tuple[np.ndarray, pa.Array, pa.Array] | None = None

    def settled(
        self, fids: np.ndarray, gids: pa.Array, *, retry_not_found: bool, retry_failed: bool
    ) -> Settled:
        """What ``Earlier.settled`` says of these rows (since the newest ``--fresh``)."""
        if self._whole is not None:
            since = self._whole[0]
        elif not self._ledger.query("SELECT 1 FROM log LIMIT 1"):  # a first run: no probes
            since = Earlier(no_records())
        else:
            asked = np.sort(fids)  # in order: the customer index read forwards
            asked = asked[np.r_[True, asked[1:] != asked[:-1]]] if len(asked) else asked
            latest = self._ledger.query(_LATEST, (_ids(asked.tolist()), self._fresh))[0][0]
            since = Earlier(_from_json(latest))
        return since.settled(fids, gids, retry_not_found=retry_not_found, retry_failed=retry_failed)

    def _written(self, fids: Iterable[int], state: int | None = None) -> list[int]:
        """Of these customers, those ``customer_state`` has (the job wrote to them), or only
        those in ``state``."""
        wanted = _ids(fids)
        if wanted == "[]":
            return []
        also = "" if state is None else f" AND c.state = {state}"
        return [
            int(f)
            for (f,) in self._ledger.query(
                "SELECT c.fusebill_id FROM json_each(?) a "
                f"JOIN customer_state c ON c.fusebill_id = a.value{also}",
                (wanted,),
            )
        ]

    def _lines_of(self, fids: list[int]) -> Earlier:
        return Earlier(self._ledger.records_of(self._url, fids))

    def origins(self, fids: Iterable[int]) -> dict[int, Origin]:
        """What ``Earlier.origins`` says: only a customer the job wrote to has one."""
        if self._whole is not None:
            return self._whole[1].origins(fids)
        written = self._written(fids)
        return self._lines_of(written).origins(written) if written else {}

    def unanswered(self, fids: Iterable[int]) -> dict[int, Unanswered]:
        """What ``Earlier.unanswered`` says: only a customer in state ``unknown`` has one."""
        if self._whole is not None:
            return self._whole[1].unanswered(fids)
        open_ = self._written(fids, _UNKNOWN)
        return self._lines_of(open_).unanswered(open_) if open_ else {}

    def undo_targets(self) -> Targets:
        """What ``Earlier.undo_targets`` says, by customer: those ``latched`` from their
        kept state, those ``unknown`` (a write left open) from their own lines."""
        if self._whole is not None:
            return self._whole[1].undo_targets()
        got = self._latched_now()
        fids = np.asarray(got["f"].to_numpy(), np.int64)
        if len(fids) > 1 and not bool(np.all(fids[1:] > fids[:-1])):  # in customer order
            order = np.argsort(fids, kind="stable")
            got, fids = got.take(pa.array(order)), fids[order]
        kept = Targets(
            fids,
            got["g"].combine_chunks(),
            got["b"].combine_chunks(),
            ~as_mask(got["n"]),
        )
        self._latched = fids, got["r"].combine_chunks(), got["k"].combine_chunks()
        unknown = [
            int(f)
            for (f,) in self._ledger.query(
                f"SELECT fusebill_id FROM customer_state WHERE state = {_UNKNOWN}"
            )
        ]
        if not unknown:
            return kept
        lines = self._lines_of(unknown).undo_targets()
        both = Targets(
            np.concatenate([kept.fusebill_ids, lines.fusebill_ids]),
            pa.concat_arrays([kept.set_to, lines.set_to]),
            pa.concat_arrays([kept.previous, lines.previous]),
            np.concatenate([kept.known, lines.known]),
        )
        return both.take(np.argsort(both.fusebill_ids, kind="stable"))

    def _latched_now(self) -> pa.Table:
        """``_LATCHED_NOW`` as columns f, g, b, n (blind), r and k (the sheet row and command
        of the line of what it holds, null unless a ``run`` wrote it with a row)."""
        count, f, g, b, n, r, k = self._ledger.query(_LATCHED_NOW.format(texts=_SEPARATED))[0]
        if not count:
            return _LATCHED_SCHEMA.empty_table()
        held, before = _texts(g, count), _texts(b, count)
        if held is None or before is None:  # a value holds the separator: as JSON, all again
            count, f, g, b, n, r, k = self._ledger.query(_LATCHED_NOW.format(texts=_AS_JSON))[0]
            held, before = (pa.array(json.loads(t), pa.string()) for t in (g, b))
        fids, rows, commands = (_numbers(t) for t in (f, r, k))
        runs = [i for (i,) in self._ledger.query("SELECT id FROM commands WHERE kind = 'run'")]
        by_run = np.isin(commands, np.asarray(runs, np.int64))
        return pa.table(
            [
                fids,
                held,
                before,
                np.frombuffer(n.encode("ascii"), np.uint8) == ord("1"),
                pa.array(rows, mask=~(by_run & (rows >= 0))),
                pa.array(commands, mask=~by_run),
            ],
            schema=_LATCHED_SCHEMA,
        )

    def latch_rows(self, found: Targets) -> tuple[pa.Array, list[str]]:
        """For each target, the sheet row (null: not known) and run folder of the latest
        latch a ``run`` made of what undo puts back: the line of what it holds, when a run
        wrote it with a row; else looked up in the lines of that customer."""
        n = len(found)
        rows = np.zeros(n, np.int64)
        known = np.zeros(n, bool)
        runs = np.full(n, "", dtype=object)
        names = dict(self._ledger.query("SELECT id, run_id FROM commands"))
        if self._whole is None and self._latched is not None:
            fids, held_rows, commands = self._latched
            at = np.minimum(np.searchsorted(fids, found.fusebill_ids), max(len(fids) - 1, 0))
            valid = as_mask(held_rows.is_valid())[at] if len(fids) else np.zeros(n, bool)
            hit = valid & (fids[at] == found.fusebill_ids) if len(fids) else valid
            where = np.flatnonzero(hit)
            rows[where] = np.asarray(held_rows.fill_null(0).to_numpy(), np.int64)[at[where]]
            known[where] = True
            by_command = np.asarray(commands.fill_null(0).to_numpy(), np.int64)[at[where]]
            labels = {int(k): str(names.get(int(k), "")) for k in np.unique(by_command)}
            runs[where] = [labels[k] for k in by_command.tolist()]
        rest = np.flatnonzero(~known)
        if len(rest):
            only = (
                ""
                if self._whole is not None
                else "AND l.fusebill_id IN (SELECT value FROM json_each(?))"
            )
            args = () if self._whole is not None else (_ids(found.fusebill_ids[rest].tolist()),)
            got = self._latch_lines(only, *args)
            wanted = zip(
                found.fusebill_ids[rest].tolist(), pc.take(found.set_to, pa.array(rest)).to_pylist()
            )
            for i, key in zip(rest.tolist(), wanted):
                row, run = got.get(key, (None, ""))
                if row is not None:
                    rows[i], known[i] = row, True
                runs[i] = run
        return pa.array(rows, pa.int64(), mask=~known), runs.tolist()

    def _latch_lines(
        self, only: str, *args: object
    ) -> dict[tuple[int, str], tuple[int | None, str]]:
        return {
            (int(f), str(g)): (r, str(run))
            for f, g, r, run in self._ledger.query(_LATCH_LINES.format(only=only), args)
        }
