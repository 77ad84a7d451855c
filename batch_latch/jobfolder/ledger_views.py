"""The ledger's public views: ``runs``, ``events``, ``pairs``, ``customers``.

They are part of the outside contract (ops and auditors read them with any SQLite tool;
columns may be added, never renamed) and they are what ``status`` counts: the rules for
a pair's status and a customer's state are written once, here, in SQL.

A write recorded before it was sent (``log.status = 'writing'``) is *open* until a later
line for the same customer settles it (``settles = 1``: Fusebill's answer proved the write,
or a read showed what the customer holds). Only the commands that send (``run``,
``undo``) count for what the job holds in Fusebill.
"""

from __future__ import annotations

#: The kinds of command whose lines say what the job did in Fusebill.
_SENDS = "('run', 'undo')"
#: A change that wrote to the customer.
_WRITES = "('new', 'relatch', 'unknown')"
_WRITES_OR_UNDO = "('new', 'relatch', 'unknown', 'undo')"

#: Every view (dropped and made again when this build's differ from a job.db's).
NAMES = ("customers", "pairs", "events", "open_writes", "runs", "inputs")

VIEWS = f"""
CREATE VIEW inputs AS
SELECT s.input_sha256, r.row, r.fusebill_id, r.geotab_id
FROM sheet_rows r JOIN sheets s ON s.id = r.sheet;

CREATE VIEW runs AS
SELECT run_id, kind, started_at, ended_at, user, input, input_sha256, base_url,
       plan_run_id, exit_code, requests
FROM commands ORDER BY id;

CREATE VIEW open_writes AS
SELECT w.seq, w.command, w.fusebill_id, w.geotab_id, w.previous, w.change
FROM log w JOIN commands c ON c.id = w.command
WHERE w.status = 'writing' AND c.kind IN {_SENDS}
  AND NOT EXISTS (SELECT 1 FROM log s WHERE s.fusebill_id = w.fusebill_id
                  AND s.seq > w.seq AND s.settles = 1);

CREATE VIEW events AS
SELECT c.run_id, l.at, l.row, l.fusebill_id AS fusebillId, l.geotab_id AS geotabId,
       NULLIF(l.previous, '') AS previous_geotabId, l.status, l.change, l.error_key,
       CASE WHEN l.status = 'writing' AND l.message = ''
            THEN 'sent; its answer was not recorded (the command stopped before it came)'
            ELSE l.message END AS message,
       l.seq
FROM log l JOIN commands c ON c.id = l.command
WHERE l.status != 'writing'
   OR (c.kind IN {_SENDS} AND NOT EXISTS (SELECT 1 FROM log s WHERE s.fusebill_id = l.fusebill_id
                                          AND s.seq > l.seq AND s.settles = 1))
ORDER BY l.seq;

CREATE VIEW pairs AS
WITH
seen AS (
  SELECT fusebill_id, geotab_id,
         COALESCE(  -- its latest run's outcome; a plan's only when no run had it
           MAX(CASE WHEN status != 'writing' AND command IN (
                 SELECT id FROM commands WHERE kind IN {_SENDS}) THEN seq END),
           MAX(CASE WHEN status != 'writing' THEN seq END)) AS last_seq,
         MAX(CASE WHEN status = 'success' THEN seq END) AS success_seq,
         MAX(CASE WHEN status = 'success' AND change IN {_WRITES} THEN seq END) AS latch_seq,
         MAX(seq) AS any_seq, NULL AS input_row
  FROM log WHERE change != 'undo' GROUP BY fusebill_id, geotab_id
  UNION ALL
  SELECT i.fusebill_id, i.geotab_id, NULL, NULL, NULL, NULL, i.input_row
  FROM (SELECT fusebill_id, geotab_id, MAX(row) AS input_row,
               MAX(input_sha256 IN (SELECT input_sha256 FROM commands
                                    WHERE kind IN ('run', 'plan'))) AS read
        FROM inputs GROUP BY fusebill_id, geotab_id) i
  WHERE i.read AND NOT EXISTS (SELECT 1 FROM log l WHERE l.fusebill_id = i.fusebill_id
                    AND l.geotab_id = i.geotab_id AND l.change != 'undo')
),
pair AS (
  SELECT s.*, l.status AS last_status, l.error_key AS last_key, l.command AS last_command,
         COALESCE(l.row, (SELECT MAX(row) FROM log r WHERE r.seq = s.any_seq), s.input_row,
                  (SELECT MAX(row) FROM inputs i WHERE i.fusebill_id = s.fusebill_id
                   AND i.geotab_id = s.geotab_id)) AS last_row
  FROM seen s LEFT JOIN log l ON l.seq = s.last_seq
)
SELECT p.fusebill_id AS fusebillId, p.geotab_id AS geotabId,
  CASE
    WHEN EXISTS (
      SELECT 1 FROM log u JOIN commands c ON c.id = u.command
      WHERE u.fusebill_id = p.fusebill_id AND u.change = 'undo' AND u.status = 'success'
        AND (u.seq > p.latch_seq OR EXISTS (
          -- a write of the pair whose answer was lost, still open when undo put it back
          SELECT 1 FROM log w WHERE w.fusebill_id = p.fusebill_id
            AND w.geotab_id = p.geotab_id AND w.status = 'writing'
            AND w.change IN {_WRITES} AND w.seq < u.seq
            AND NOT EXISTS (SELECT 1 FROM log s WHERE s.fusebill_id = w.fusebill_id
                            AND s.seq > w.seq AND s.seq < u.seq AND s.settles = 1))))
      THEN 'undone'
    WHEN p.latch_seq IS NOT NULL AND EXISTS (
      SELECT 1 FROM log r WHERE r.fusebill_id = p.fusebill_id AND r.status = 'success'
        AND r.change IN {_WRITES} AND r.geotab_id != p.geotab_id
        AND r.seq > p.latch_seq) THEN 'replaced'
    WHEN EXISTS (SELECT 1 FROM open_writes w WHERE w.fusebill_id = p.fusebill_id
                 AND w.geotab_id = p.geotab_id) THEN 'writing'
    WHEN p.success_seq IS NULL AND p.any_seq IS NOT NULL AND NOT EXISTS (
      SELECT 1 FROM log x WHERE x.fusebill_id = p.fusebill_id AND x.geotab_id = p.geotab_id
        AND x.status != 'writing' AND (x.row IS NULL OR NOT EXISTS (
          SELECT 1 FROM log y WHERE y.row = x.row AND y.seq > x.seq
            AND y.status != 'writing' AND y.change != 'undo'
            AND y.command IN (SELECT id FROM commands WHERE kind IN {_SENDS})
            AND (y.fusebill_id != x.fusebill_id OR y.geotab_id != x.geotab_id))))
      THEN 'fixed'
    ELSE COALESCE(p.last_status, 'pending')
  END AS status,
  (SELECT run_id FROM commands c WHERE c.id = p.last_command) AS run_id,
  p.last_row AS row,
  COALESCE(p.last_key, '') AS error_key
FROM pair p;

CREATE VIEW customers AS
WITH
wrote AS (
  SELECT l.seq, l.fusebill_id, l.geotab_id, l.previous, l.change
  FROM log l JOIN commands c ON c.id = l.command
  WHERE c.kind IN {_SENDS} AND l.status = 'success' AND l.change IN {_WRITES_OR_UNDO}
),
who AS (
  SELECT fusebill_id FROM wrote UNION SELECT fusebill_id FROM open_writes
)
SELECT w.fusebill_id AS fusebillId,
  (SELECT NULLIF(f.previous, '') FROM (
     SELECT seq, previous FROM wrote WHERE fusebill_id = w.fusebill_id AND change != 'undo'
     UNION ALL SELECT seq, previous FROM open_writes WHERE fusebill_id = w.fusebill_id
       AND change != 'undo'
   ) f ORDER BY f.seq LIMIT 1) AS before,
  (SELECT NULLIF(l.geotab_id, '') FROM wrote l WHERE l.fusebill_id = w.fusebill_id
   ORDER BY l.seq DESC LIMIT 1) AS holds,
  CASE
    WHEN EXISTS (SELECT 1 FROM open_writes o WHERE o.fusebill_id = w.fusebill_id)
      THEN 'unknown'
    WHEN (SELECT change FROM wrote l WHERE l.fusebill_id = w.fusebill_id
          ORDER BY l.seq DESC LIMIT 1) = 'undo' THEN 'restored'
    ELSE 'latched'
  END AS state
FROM who w;
"""


def statements() -> set[str]:
    """Each view's ``CREATE VIEW`` statement as SQLite keeps it in ``sqlite_master``."""
    parts = VIEWS.split("CREATE VIEW ")[1:]  # a view's text may hold a ';' (events does)
    return {"CREATE VIEW " + part.strip().removesuffix(";") for part in parts}
