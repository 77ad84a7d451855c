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

#: The message of a write's intent whose answer never came (the events view shows it).
WRITING_NOTE = "sent; its answer was not recorded (the command stopped before it came)"
#: The kinds of command whose lines say what the job did in Fusebill.
_SENDS = "('run', 'undo')"
#: A change that wrote to the customer.
_WRITES = "('new', 'relatch', 'unknown')"
_WRITES_OR_UNDO = "('new', 'relatch', 'unknown', 'undo')"

#: A pair's status and a customer's state as kept in ``pair_state`` and ``customer_state``:
#: the n-th word as the number n (the commonest first: SQLite keeps 0 and 1 in no bytes),
#: any other word as itself.
PAIR_WORDS = ("success", "valid", "not_found", "failed", "fixed", "replaced", "undone", "writing")
STATE_WORDS = ("latched", "restored", "unknown")


def _encode(expr: str, words: tuple[str, ...]) -> str:
    whens = " ".join(f"WHEN '{w}' THEN {n}" for n, w in enumerate(words))
    return f"CASE {expr} {whens} ELSE {expr} END"


def _decode(expr: str, words: tuple[str, ...]) -> str:
    whens = " ".join(f"WHEN {n} THEN '{w}'" for n, w in enumerate(words))
    return f"CASE {expr} {whens} ELSE {expr} END"


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
            THEN '{WRITING_NOTE}'
            ELSE l.message END AS message,
       l.seq
FROM log l JOIN commands c ON c.id = l.command
WHERE l.status != 'writing'
   OR (c.kind IN {_SENDS} AND NOT EXISTS (SELECT 1 FROM log s WHERE s.fusebill_id = l.fusebill_id
                                          AND s.seq > l.seq AND s.settles = 1))
ORDER BY l.seq;

CREATE VIEW pairs AS
SELECT p.fusebill_id AS fusebillId, p.geotab_id AS geotabId,
  {_decode("p.status", PAIR_WORDS)} AS status,
  (SELECT run_id FROM commands c WHERE c.id = p.command) AS run_id,
  COALESCE(p.row, (SELECT MAX(row) FROM inputs i WHERE i.fusebill_id = p.fusebill_id
                   AND i.geotab_id = p.geotab_id)) AS row,
  p.error_key
FROM pair_state p
UNION ALL
SELECT i.fusebill_id, i.geotab_id,
  CASE WHEN EXISTS (SELECT 1 FROM open_writes w WHERE w.fusebill_id = i.fusebill_id
                    AND w.geotab_id = i.geotab_id) THEN 'writing' ELSE 'pending' END,
  NULL, MAX(i.row), ''
FROM inputs i
WHERE NOT EXISTS (SELECT 1 FROM pair_state p WHERE p.fusebill_id = i.fusebill_id
                  AND p.geotab_id = i.geotab_id)
GROUP BY i.fusebill_id, i.geotab_id
HAVING MAX(i.input_sha256 IN (SELECT input_sha256 FROM commands WHERE kind IN ('run', 'plan')));

CREATE VIEW customers AS
SELECT c.fusebill_id AS fusebillId, c.before,
  (SELECT NULLIF(l.geotab_id, '') FROM log l WHERE l.seq = c.holds_seq) AS holds,
  {_decode("c.state", STATE_WORDS)} AS state
FROM customer_state c;
"""


def statements() -> set[str]:
    """Each view's ``CREATE VIEW`` statement as SQLite keeps it in ``sqlite_master``."""
    parts = VIEWS.split("CREATE VIEW ")[1:]  # a view's text may hold a ';' (events does)
    return {"CREATE VIEW " + part.strip().removesuffix(";") for part in parts}


# --- the state the views read (format 3) ------------------------------------------------
#
# ``pairs`` and ``customers`` are read from two tables kept by triggers on ``log`` in the
# transaction that writes (or withdraws) a line: each line recomputes the state of its
# customer's pairs and of the pairs met on its sheet row (a later line of the row by a
# sending command can make a pair ``fixed``), and its customer's state, by the rules below,
# from those customers' lines alone (found through the log's indexes). The rules are the
# ones the views of format 2 applied to the whole log at every read.

STATE = """
CREATE TABLE pair_state (
    fusebill_id INTEGER NOT NULL,
    geotab_id TEXT NOT NULL,
    status NOT NULL,               -- a word of PAIR_WORDS by its number, or the word
    command INTEGER,               -- the command of the line that gave the status
    row INTEGER,
    error_key TEXT NOT NULL,
    PRIMARY KEY (fusebill_id, geotab_id)
) WITHOUT ROWID;
CREATE TABLE customer_state (
    fusebill_id INTEGER PRIMARY KEY,
    before TEXT,
    holds_seq INTEGER,             -- the line of what it holds (customers.holds)
    state NOT NULL,                -- a word of STATE_WORDS by its number, or the word
    blind INTEGER                  -- 1: the first change (before's) was written blind
);
CREATE TABLE pair_counts (status TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE customer_counts (state TEXT PRIMARY KEY, n INTEGER NOT NULL) WITHOUT ROWID;
"""

#: Every trigger (dropped and made again with the state tables' rules).
TRIGGERS = (
    "log_state_insert",
    "log_state_delete",
    "pair_counted",
    "pair_uncounted",
    "customer_counted",
    "customer_uncounted",
)


#: A pair's status from its lines (``p``: what its lines sum up to, ``l``: its latest).
PAIR_STATUS = f"""
  CASE
    WHEN EXISTS (
      SELECT 1 FROM log u JOIN commands c ON c.id = u.command
      WHERE u.fusebill_id = p.fusebill_id AND u.change = 'undo' AND u.status = 'success'
        AND (u.seq > p.latch_seq OR EXISTS (
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
    WHEN p.success_seq IS NULL AND NOT EXISTS (
      SELECT 1 FROM log x WHERE x.fusebill_id = p.fusebill_id AND x.geotab_id = p.geotab_id
        AND x.status != 'writing' AND (x.row IS NULL OR NOT EXISTS (
          SELECT 1 FROM log y WHERE y.row = x.row AND y.seq > x.seq
            AND y.status != 'writing' AND y.change != 'undo'
            AND y.command IN (SELECT id FROM commands WHERE kind IN {_SENDS})
            AND (y.fusebill_id != x.fusebill_id OR y.geotab_id != x.geotab_id))))
      THEN 'fixed'
    ELSE COALESCE(l.status, 'pending')
  END
"""


def _pair_rules(who: str) -> str:
    """The state of every pair of the customers ``who`` (an SQL set of fusebill ids, or
    ``NULL``: every customer), as rows of ``pair_state``."""
    only = "" if who == "NULL" else f"AND fusebill_id IN {who}"
    return f"""
SELECT p.fusebill_id, p.geotab_id,
  {_encode(PAIR_STATUS, PAIR_WORDS)},
  l.command,
  COALESCE(l.row, (SELECT MAX(row) FROM log r WHERE r.seq = p.any_seq)),
  COALESCE(l.error_key, '')
FROM (
  SELECT fusebill_id, geotab_id,
         COALESCE(  -- its latest run's outcome; a plan's only when no run had it
           MAX(CASE WHEN status != 'writing' AND command IN (
                 SELECT id FROM commands WHERE kind IN {_SENDS}) THEN seq END),
           MAX(CASE WHEN status != 'writing' THEN seq END)) AS last_seq,
         MAX(CASE WHEN status = 'success' THEN seq END) AS success_seq,
         MAX(CASE WHEN status = 'success' AND change IN {_WRITES} THEN seq END) AS latch_seq,
         MAX(seq) AS any_seq
  FROM log WHERE change != 'undo' {only} GROUP BY fusebill_id, geotab_id
) p LEFT JOIN log l ON l.seq = p.last_seq"""


def _wrote(who: str) -> str:
    return f"""(SELECT l.seq, l.fusebill_id, l.geotab_id, l.previous, l.change
  FROM log l JOIN commands c ON c.id = l.command
  WHERE c.kind IN {_SENDS} AND l.status = 'success' AND l.change IN {_WRITES_OR_UNDO}
    AND l.fusebill_id = {who})"""


#: ``customer_state.blind`` from the line ``before`` comes from: 1 when it was written blind
#: (``--no-read``: what the customer held is not known, undo leaves it alone), else null
#: (a null, like a 0, takes no bytes but its header's).
_BLIND = "CASE WHEN {line}.change = 'unknown' THEN 1 END"


def _customer_rules(who: str) -> str:
    """The state of the customer ``who`` (an SQL expression), as a row of
    ``customer_state`` (none: the job never wrote to it)."""
    state = f"""CASE
    WHEN EXISTS (SELECT 1 FROM open_writes o WHERE o.fusebill_id = {who}) THEN 'unknown'
    WHEN (SELECT w.change FROM {_wrote(who)} w ORDER BY w.seq DESC LIMIT 1) = 'undo'
      THEN 'restored'
    ELSE 'latched'
  END"""
    first = f"""(
     SELECT seq, previous, change FROM {_wrote(who)} WHERE change != 'undo'
     UNION ALL SELECT seq, previous, change FROM open_writes WHERE fusebill_id = {who}
       AND change != 'undo'
   ) f ORDER BY f.seq LIMIT 1"""
    return f"""
SELECT {who},
  (SELECT NULLIF(f.previous, '') FROM {first}),
  (SELECT w.seq FROM {_wrote(who)} w ORDER BY w.seq DESC LIMIT 1),
  {_encode(state, STATE_WORDS)},
  (SELECT {_BLIND.format(line="f")} FROM {first})
WHERE EXISTS (SELECT 1 FROM {_wrote(who)})
   OR EXISTS (SELECT 1 FROM open_writes o WHERE o.fusebill_id = {who})"""


def _on(line: str) -> str:
    """What a line written or withdrawn (``NEW`` or ``OLD``) changes in the state."""
    who = (
        f"(SELECT {line}.fusebill_id UNION SELECT fusebill_id FROM log "
        f"WHERE row = {line}.row AND status != 'writing')"
    )
    return f"""
  DELETE FROM pair_state WHERE fusebill_id IN {who};
  INSERT INTO pair_state {_pair_rules(who)};
  DELETE FROM customer_state WHERE fusebill_id = {line}.fusebill_id;
  INSERT INTO customer_state {_customer_rules(f"{line}.fusebill_id")};
"""


STATE_TRIGGERS = f"""
CREATE TRIGGER log_state_insert AFTER INSERT ON log BEGIN{_on("NEW")}END;
CREATE TRIGGER log_state_delete AFTER DELETE ON log BEGIN{_on("OLD")}END;
CREATE TRIGGER pair_counted AFTER INSERT ON pair_state BEGIN
  INSERT INTO pair_counts VALUES ({_decode("NEW.status", PAIR_WORDS)}, 1)
    ON CONFLICT (status) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER pair_uncounted AFTER DELETE ON pair_state BEGIN
  UPDATE pair_counts SET n = n - 1 WHERE status = {_decode("OLD.status", PAIR_WORDS)};
END;
CREATE TRIGGER customer_counted AFTER INSERT ON customer_state BEGIN
  INSERT INTO customer_counts VALUES ({_decode("NEW.state", STATE_WORDS)}, 1)
    ON CONFLICT (state) DO UPDATE SET n = n + 1;
END;
CREATE TRIGGER customer_uncounted AFTER DELETE ON customer_state BEGIN
  UPDATE customer_counts SET n = n - 1 WHERE state = {_decode("OLD.state", STATE_WORDS)};
END;
"""

#: A customer's state from its writes (set-wise: ``e`` sums them up, ``l`` its latest).
_SET_STATE = """CASE
    WHEN e.open THEN 'unknown' WHEN l.change = 'undo' THEN 'restored' ELSE 'latched'
  END"""


def _fill(who: str) -> list[str]:
    """Statements that make the state of the customers ``who`` (an SQL set of fusebill ids,
    or ``NULL``: every customer) again from their lines, set-wise."""
    drop = "" if who == "NULL" else f" WHERE fusebill_id IN {who}"
    return [
        f"DELETE FROM pair_state{drop}",
        f"DELETE FROM customer_state{drop}",
        *fill_pairs(who),
        *fill_customers(who),
    ]


def fill_pairs(who: str) -> list[str]:
    """The state of the pairs of the customers ``who`` (as :func:`_fill`), none kept yet."""
    return [f"INSERT INTO pair_state {_pair_rules(who)}"]


def fill_customers(who: str) -> list[str]:
    """The state of the customers ``who`` (as :func:`_fill`), none kept yet."""
    only = "" if who == "NULL" else f"AND l.fusebill_id IN {who}"
    only_open = "" if who == "NULL" else f"WHERE fusebill_id IN {who}"
    return [
        f"""INSERT INTO customer_state
WITH
wrote AS (
  SELECT l.seq, l.fusebill_id, l.change, 0 AS open
  FROM log l JOIN commands c ON c.id = l.command
  WHERE c.kind IN {_SENDS} AND l.status = 'success' AND l.change IN {_WRITES_OR_UNDO} {only}
  UNION ALL SELECT seq, fusebill_id, change, 1 FROM open_writes {only_open}
),
each AS (
  SELECT fusebill_id, MAX(CASE WHEN open = 0 THEN seq END) AS last_seq,
         MIN(CASE WHEN change != 'undo' THEN seq END) AS first_seq, MAX(open) AS open
  FROM wrote GROUP BY fusebill_id
)
SELECT e.fusebill_id, NULLIF(f.previous, ''), e.last_seq,
  {_encode(_SET_STATE, STATE_WORDS)}, {_BLIND.format(line="f")}
FROM each e LEFT JOIN log l ON l.seq = e.last_seq LEFT JOIN log f ON f.seq = e.first_seq""",
    ]


#: The counts of the state kept, counted again (the counting triggers set aside).
COUNT_STATE = f"""DELETE FROM pair_counts;
DELETE FROM customer_counts;
INSERT INTO pair_counts SELECT {_decode("status", PAIR_WORDS)}, count(*) FROM pair_state GROUP BY 1;
INSERT INTO customer_counts
  SELECT {_decode("state", STATE_WORDS)}, count(*) FROM customer_state GROUP BY 1;
"""


#: The state of every pair and customer, from the whole log (a job.db of format 2 or older).
FILL_STATE = "DELETE FROM pair_counts;DELETE FROM customer_counts;" + "".join(
    f"{statement};" for statement in _fill("NULL")
)
#: Format 3 to 4: ``customer_state`` gains ``blind``, and every customer's state is made
#: again (its pairs' is unchanged).
ADD_BLIND = "ALTER TABLE customer_state ADD COLUMN blind INTEGER;"
FILL_CUSTOMERS = "DELETE FROM customer_state;" + "".join(f"{s};" for s in fill_customers("NULL"))
#: The trigger a bulk of lines is written without (see :func:`bulk`).
_PER_LINE = STATE_TRIGGERS[: STATE_TRIGGERS.index("CREATE TRIGGER log_state_delete")].strip()


def bulk(first: int, last: int) -> tuple[list[str], list[str]]:
    """Many lines at once (seq ``first`` to ``last``, a job built in bulk): the statements to
    run before they are inserted (the per-line trigger set aside) and after (the state of
    the customers they touch made again set-wise, the trigger back), all in the transaction
    that inserts them. A line at a time a million lines cost minutes; set-wise, seconds."""
    touched = f"""INSERT OR IGNORE INTO temp.touched
SELECT fusebill_id FROM log WHERE seq BETWEEN {first} AND {last}
UNION SELECT o.fusebill_id FROM log n JOIN log o ON o.row = n.row AND o.status != 'writing'
WHERE n.seq BETWEEN {first} AND {last}"""
    before = ["DROP TRIGGER log_state_insert"]
    after = [
        "CREATE TEMP TABLE IF NOT EXISTS touched (fusebill_id INTEGER PRIMARY KEY)",
        "DELETE FROM temp.touched",
        touched,
        *_fill("(SELECT fusebill_id FROM temp.touched)"),
        "DELETE FROM temp.touched",
        _PER_LINE.removesuffix(";"),
    ]
    return before, after


def trigger_statements() -> set[str]:
    """Each trigger's ``CREATE TRIGGER`` statement as SQLite keeps it in ``sqlite_master``."""
    parts = STATE_TRIGGERS.split("CREATE TRIGGER ")[1:]
    return {"CREATE TRIGGER " + part.strip().removesuffix(";") for part in parts}
