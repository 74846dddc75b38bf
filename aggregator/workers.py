"""Parse worker processes: each under a memory cap, each task under a time cap; a worker over either is replaced.

concurrent.futures.ProcessPoolExecutor cannot stop one task: a task over its time can only be
waited for, and a worker that dies (stopped by us, killed by the kernel's OOM killer, or aborting
on a failed allocation inside C code) breaks the whole pool, failing every task queued behind it.
Here each worker process is driven by one thread of the parent: the thread sends a task, waits
for the answer up to the time cap, and on a timeout or a death stops and forgets that process
alone; the next task starts a fresh one. Inside the worker, RLIMIT_AS caps the address space at
its size after start-up plus the memory cap, so an allocation past it fails (MemoryError) in that
worker instead of taking the machine's memory.
"""

from __future__ import annotations

import logging
import resource
import signal
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import BaseContext
from queue import Empty, SimpleQueue
from typing import Any

log = logging.getLogger("newsdesk.poll")


class WorkerLimitError(Exception):
    """A task went over a worker limit (time or memory), or its worker died; that worker was replaced."""

    def __init__(self, message: str, limit: str | None = None) -> None:
        super().__init__(message)
        #: Which limit: "timeout", "memory", or None when the worker died of something else.
        self.limit = limit


class WorkerTaskError(Exception):
    """The task raised an exception in the worker (its type and message, as text)."""


@dataclass(frozen=True)
class WorkerLimits:
    """The bounds every worker process and every task run under."""

    #: Bytes of address space a worker may add to what it holds once started (0: no cap).
    memory: int = 0
    #: Seconds one task may take, from the moment the worker receives it (0: no cap).
    timeout: float = 0.0


_Task = tuple["Future[Any]", Callable[..., Any], tuple[Any, ...]]


class WorkerPool:
    """Runs picklable module-level functions in worker processes, under ``WorkerLimits``; ``submit`` returns a Future."""

    def __init__(
        self,
        max_workers: int,
        limits: WorkerLimits,
        context: BaseContext,
        initializer: Callable[[], object] | None = None,
    ) -> None:
        #: Worker processes at most (each with a thread of ours driving it).
        self.max_workers = max(1, max_workers)
        #: The bounds each worker and task run under.
        self.limits = limits
        #: Run in each worker once, before its memory cap is set (picklable, module-level).
        self.initializer = initializer
        self._context = context
        self._tasks: SimpleQueue[_Task | None] = SimpleQueue()
        self._lock = threading.Lock()
        self._workers: list[_Worker] = []
        # Workers waiting for a task, and tasks queued but not yet taken: a worker is started when
        # the second outnumbers the first.
        self._idle = 0
        self._queued = 0
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        """Queue ``fn(*args)`` for a worker process and return its Future; raise RuntimeError once shut down."""
        future: Future[Any] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot run a task: the worker pool is shut down")
            self._tasks.put((future, fn, args))
            self._queued += 1
            # Workers start lazily: one more whenever the queued tasks outnumber the idle workers.
            if self._queued > self._idle and len(self._workers) < self.max_workers:
                worker = _Worker(self, len(self._workers))
                self._workers.append(worker)
                worker.thread.start()
        return future

    def pids(self) -> list[int]:
        """Return the process ids of the worker processes now running."""
        with self._lock:
            return [pid for pid in (worker.pid() for worker in self._workers) if pid is not None]

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop taking tasks, finish (or cancel) the queued ones, and stop the worker processes."""
        with self._lock:
            if not self._closed:
                self._closed = True
                if cancel_futures:
                    while True:
                        try:
                            task = self._tasks.get_nowait()
                        except Empty:
                            break
                        if task is not None:
                            task[0].cancel()
                for _ in self._workers:
                    self._tasks.put(None)
            workers = list(self._workers)
        if wait:
            for worker in workers:
                worker.thread.join()

    def _next_task(self) -> _Task | None:
        with self._lock:
            self._idle += 1
        task = self._tasks.get()
        with self._lock:
            self._idle -= 1
            if task is not None:
                self._queued -= 1
        return task


class _Worker:
    """One worker process and the thread of ours that feeds it tasks and waits for its answers."""

    def __init__(self, pool: WorkerPool, number: int) -> None:
        self.pool = pool
        self.process: Any = None
        self.conn: Connection | None = None
        self.thread = threading.Thread(target=self.serve, name=f"newsdesk-parse-{number}", daemon=True)

    def pid(self) -> int | None:
        process = self.process
        return process.pid if process is not None and process.is_alive() else None

    def serve(self) -> None:
        try:
            while True:
                task = self.pool._next_task()
                if task is None:
                    return
                future, fn, args = task
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    result = self._run(fn, args)
                except BaseException as exc:  # the task's outcome, whatever it is, belongs to its Future
                    future.set_exception(exc)
                else:
                    future.set_result(result)
        finally:
            self._discard(kill=False)

    def _start(self) -> Connection:
        context = self.pool._context
        parent, child = context.Pipe()
        process = context.Process(  # type: ignore[attr-defined]
            target=serve_tasks,
            args=(child, self.pool.limits.memory, self.pool.initializer),
            name="newsdesk-parse",
            daemon=True,
        )
        process.start()
        child.close()
        self.process, self.conn = process, parent
        return parent

    def _discard(self, *, kill: bool) -> int | None:
        """Stop and forget the worker process (at once when ``kill``); return its exit code."""
        process, conn = self.process, self.conn
        self.process = self.conn = None
        if conn is not None:
            conn.close()  # an idle worker reads the end of its pipe and exits
        if process is None:
            return None
        if kill:
            process.kill()
        process.join(5)
        if process.is_alive():
            process.kill()
            process.join(5)
        code: int | None = process.exitcode
        process.close()
        return code

    def _run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        limits = self.pool.limits
        conn = self.conn if self.conn is not None and self.pid() is not None else None
        if conn is None:
            self._discard(kill=True)
            conn = self._start()
        try:
            conn.send((fn, args))
        except (OSError, EOFError):  # the worker died while it waited for work: start another
            self._discard(kill=True)
            conn = self._start()
            conn.send((fn, args))
        if not conn.poll(limits.timeout or None):
            self._discard(kill=True)
            raise WorkerLimitError(f"took longer than {limits.timeout:g} s and was stopped", "timeout")
        try:
            kind, value = conn.recv()
        except (EOFError, OSError):
            raise WorkerLimitError(_death(self._discard(kill=True))) from None
        if kind == "memory":
            self._discard(kill=True)
            raise WorkerLimitError(
                f"needed more than {limits.memory / 2**20:g} MiB of memory and was stopped", "memory"
            )
        if kind == "error":
            raise WorkerTaskError(value)
        return value


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        hint = " (out of memory?)" if name == "SIGKILL" else ""
        return f"failed: its worker process was killed by {name}{hint}"
    return f"failed: its worker process exited unexpectedly (status {code})"


def _cap_address_space(extra: int) -> None:
    """Cap this process's address space at its present size plus ``extra`` bytes (RLIMIT_AS)."""
    try:
        with open("/proc/self/statm") as statm:
            size = int(statm.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):  # not Linux: the cap counts from zero
        size = 0
    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = size + extra
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))


def serve_tasks(conn: Connection, memory: int, initializer: Callable[[], object] | None = None) -> None:
    """Worker process main: run each task received on ``conn`` and send back its outcome, until the pipe closes."""
    # Ctrl-C reaches the whole process group; the parent decides when its workers stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if initializer is not None:
        try:
            initializer()
        except Exception:  # a failed warm-up costs only its speed-up; the tasks will say what is wrong
            log.exception("parse worker warm-up failed")
    if memory:
        _cap_address_space(memory)
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        except MemoryError:  # the task itself (a feed's body) does not fit under the cap
            conn.send(("memory", None))
            return
        answer: tuple[str, Any]
        try:
            answer = ("ok", fn(*args))
        except MemoryError:
            answer = ("memory", None)
        except Exception as exc:  # sent back: the parent raises it on the task's Future (WorkerTaskError)
            answer = ("error", f"{type(exc).__name__}: {exc}")
        del fn, args
        try:
            conn.send(answer)
        except MemoryError:  # pickling the answer needed more than the cap: nothing was sent yet
            answer = ("memory", None)
            conn.send(answer)
        except Exception as exc:  # an answer that cannot be pickled: sent back as the task's error, as above
            conn.send(("error", f"the answer could not be sent back: {type(exc).__name__}: {exc}"))
        if answer[0] == "memory":
            return  # a process that ran out of memory is not trusted with the next task
