"""Reading customers before their writes: a hundred per request through Fusebill's customer
list, trusted exactly as far as :mod:`batch_latch.fusebill.listing` allows, one by one
where it does not.

Batches follow the command's task order and are read as their rows come up (the first
worker to need a batch reads it; the others needing it wait for that one request), so a
read is seconds old when its write follows. A batch read more than ``STALE_AFTER`` seconds
ago (a pause, a quota wait, a slow ``--rate``) is read again before it is used, and the
decision table checks the age once more just before writing: no customer is written on a
read more than 60 s old. A list the tool cannot trust turns the rest of the command to
one-by-one reads, said once on stderr; only a one-by-one read can stop a command as a
wrong URL.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from batch_latch.fusebill.answers import Holding, Meaning, Reply, Verdict, classify_read
from batch_latch.fusebill.listing import ListAnswer, batches, classify_list
from batch_latch.fusebill.service import FusebillService
from batch_latch.send.attempt_loop import AttemptLoop, Sent
from batch_latch.send.notices import Notices

#: A read older than this is read again before its write (60 s is the contract's bound;
#: the margin covers the wait for the write's own turn at the throttle).
STALE_AFTER = 45.0


@dataclass(frozen=True)
class Read:
    """One customer's read: the request's outcome, what it holds, and when it was read."""

    sent: Sent
    holding: Holding | None
    at: float  # the reader's clock when the answer came


@dataclass
class _Batch:
    ids: list[int]
    lock: threading.Lock = field(default_factory=threading.Lock)
    answer: ListAnswer | None = None
    sent: Sent | None = None  # the list request's outcome
    at: float = 0.0


class Reader:
    """Reads for one command; thread-safe. ``order``: the customers in the order their rows
    will be sent (the batches follow it)."""

    def __init__(
        self,
        service: FusebillService,
        loop: AttemptLoop,
        notices: Notices,
        *,
        order: Sequence[int],
        base_url: str = "",
        read_batch: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._service = service
        self._loop = loop
        self._notices = notices
        self.clock = clock  # the row logic ages its reads on this same clock
        self._lock = threading.Lock()
        self.customers_read = 0
        self._one_by_one = read_batch <= 1
        self._batches: list[_Batch] = []
        self._where: dict[int, int] = {}
        if not self._one_by_one:
            try:
                cut = batches(base_url, order, read_batch)
            except ValueError:  # a base URL too long for even one id: read one by one
                cut = []
                self._one_by_one = True
            for number, ids in enumerate(cut):
                self._batches.append(_Batch(ids))
                self._where.update(dict.fromkeys(ids, number))

    @property
    def one_by_one(self) -> bool:
        return self._one_by_one

    def alone(self, fusebill_id: int, index: int) -> Read:
        """``GET /customers/{id}``: the v2 read, also every read-back."""
        holding: list[Holding | None] = [None]

        def judge(reply: Reply) -> Verdict:
            verdict, holding[0] = classify_read(reply, fusebill_id)
            return verdict

        sent = self._loop.call(lambda: self._service.customer(fusebill_id), judge, index)
        if sent.reply is not None and sent.reply.status is not None:
            self._count(1)
        return Read(sent, holding[0], self.clock())

    def read(self, fusebill_id: int, index: int) -> Read:
        """The customer's read for its write: from its batch when the list can be trusted
        for it, else alone."""
        number = self._where.get(fusebill_id)
        if self._one_by_one or number is None:
            return self.alone(fusebill_id, index)
        batch = self._batches[number]
        with batch.lock:  # the first worker to need it reads it; the others wait
            if batch.sent is None or self.clock() - batch.at > STALE_AFTER:
                self._fetch(batch, index)
            answer, sent, at = batch.answer, batch.sent, batch.at
        assert sent is not None
        if answer is None:  # the list did not answer (stopped, or gave up): as any read
            return Read(sent, None, at)
        if answer.one_by_one:
            self._switch(answer)
        holding = answer.holdings.get(fusebill_id)
        if holding is None:
            return self.alone(fusebill_id, index)
        return Read(sent, holding, at)

    def _fetch(self, batch: _Batch, index: int) -> None:
        """The batch's list request(s): every page, joined; ``answer`` stays None when the
        list did not answer (a stop, an outage, a 5xx given up)."""
        joined: ListAnswer | None = None
        page: int | None = 0
        sent: Sent | None = None
        while page is not None:
            sent, got = self._page(batch.ids, page, index)
            if got is None:
                joined = None
                break
            joined = got if joined is None else joined.then(got)
            page = joined.next_page
        if joined is not None and sent is not None and not joined.one_by_one:
            self._count(len(joined.holdings))
            sent = Sent(Verdict(Meaning.SUCCESS, "read through the customer list"), sent.reply, 0)
        batch.answer, batch.sent, batch.at = joined, sent, self.clock()

    def _page(self, ids: list[int], page: int, index: int) -> tuple[Sent, ListAnswer | None]:
        """One list request through the attempt loop; the answer None when it did not come."""
        got: list[ListAnswer] = []

        def judge(reply: Reply) -> Verdict:
            got[:] = [classify_list(reply, ids, page)]
            return got[0].verdict

        sent = self._loop.call(lambda: self._service.customers(ids, page), judge, index)
        if sent.verdict is None or not got or not got[0].answered:
            return sent, None
        return sent, got[0]

    def _switch(self, answer: ListAnswer) -> None:
        with self._lock:
            if self._one_by_one:
                return
            self._one_by_one = True
        if answer.notice:
            self._notices.once("list_untrusted", f"Note: {answer.notice}.")

    def _count(self, n: int) -> None:
        with self._lock:
            self.customers_read += n
