"""The TFF execution context a simulation runs in: one local worker, or several merged.

TFF's default local context starts and stops its own worker (see ``workers`` for why pifed does
not let it) and answers secure-sum intrinsics with an RPC error. The contexts here talk to
workers pifed controls and, like ``tff.backends.test``, rewrite the secure sums of Bonawitz et
al. (CCS 2017) into clipped, quantised plain sums (``replace_secure_intrinsics_with_bodies``):
the simulation measures what secure aggregation costs in accuracy, not the cryptography.

Scale-out (``--workers HOST:PORT,...``) has no public API in TFF 0.87: each worker gets an
``AsyncExecutionContext`` over a ``RemoteExecutor``, and one ``MergeableCompExecutionContext``
splits the clients across them. Secure sums are rewritten before the computation is cut into
mergeable form, because they sit in the ``after_merge`` part, which cannot run them.

TensorFlow-free at import: TFF is imported when a context is built.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from federated.simulation.workers import WorkerAddress, WorkerError, WorkerProcess

# How long to wait for a worker's gRPC service to accept connections.
READY_TIMEOUT_SECONDS = 60.0
# TFF's own channel options: model states and client datasets travel as single messages.
_GRPC_MAX_MESSAGE_BYTES = 2 * 1000 * 1000 * 1000
_GRPC_OPTIONS = [
    ("grpc.max_message_length", _GRPC_MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", _GRPC_MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", _GRPC_MAX_MESSAGE_BYTES),
]


def _connect(address: WorkerAddress, timeout: float, alive: Callable[[], bool]) -> Any:
    """A ready gRPC stub to a worker, or WorkerError naming the address."""
    import grpc
    from tensorflow_federated.python.core.impl.executors import remote_executor_grpc_stub

    channel = grpc.insecure_channel(str(address), _GRPC_OPTIONS)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout)
    except grpc.FutureTimeoutError as e:
        channel.close()
        hint = "" if alive() else " (the worker process has exited; see its log)"
        raise WorkerError(
            f"TFF worker {address} did not accept connections within {timeout:.0f} s{hint}; "
            "start it with `worker_binary --port=PORT` (docs/simulation.md)"
        ) from e
    return channel, remote_executor_grpc_stub.RemoteExecutorGrpcStub(channel)


def _executor_factory(stub: Any) -> Any:
    from tensorflow_federated.python.core.impl.executor_stacks import python_executor_stacks
    from tensorflow_federated.python.core.impl.executors import remote_executor
    from tensorflow_federated.python.core.impl.types import placements

    def stack_fn(cardinalities: dict) -> Any:
        cardinalities.setdefault(placements.CLIENTS, 0)
        ex = remote_executor.RemoteExecutor(stub)
        ex.set_cardinalities(cardinalities)
        return ex

    return python_executor_stacks.ResourceManagingExecutorFactory(executor_stack_fn=stack_fn)


def _test_compiler(comp: Any) -> Any:
    """Secure sums -> clipped, quantised plain sums, then the native lowering (TFF test context)."""
    from tensorflow_federated.python.core.backends.native import compiler as native_compiler
    from tensorflow_federated.python.core.backends.test import compiler as test_compiler

    comp = test_compiler.replace_secure_intrinsics_with_bodies(comp)
    return native_compiler.desugar_and_transform_to_native(comp)


def _mergeable_compiler(comp: Any) -> Any:
    """Secure sums must be rewritten before the cut: they land in ``after_merge`` otherwise."""
    from tensorflow_federated.python.core.backends.native import mergeable_comp_compiler
    from tensorflow_federated.python.core.backends.test import compiler as test_compiler

    comp = test_compiler.replace_secure_intrinsics_with_bodies(comp)
    return mergeable_comp_compiler.compile_to_mergeable_comp_form(comp)


def local_context(stub: Any) -> Any:
    """A synchronous context like ``tff.backends.test``'s, on a worker we control."""
    from tensorflow_federated.python.core.environments.tensorflow_frontend import (
        tensorflow_computation,
    )
    from tensorflow_federated.python.core.impl.execution_contexts import sync_execution_context

    return sync_execution_context.SyncExecutionContext(
        executor_fn=_executor_factory(stub),
        compiler_fn=_test_compiler,
        transform_args=tensorflow_computation.transform_args,
        transform_result=tensorflow_computation.transform_result,
    )


def mergeable_context(stubs: Sequence[Any]) -> Any:
    """One context splitting each round's clients across several workers."""
    from tensorflow_federated.python.core.environments.tensorflow_frontend import (
        tensorflow_computation,
    )
    from tensorflow_federated.python.core.impl.execution_contexts import (
        async_execution_context,
        mergeable_comp_execution_context,
    )

    contexts = [
        async_execution_context.AsyncExecutionContext(
            executor_fn=_executor_factory(stub),
            compiler_fn=_native_compiler,
            transform_args=tensorflow_computation.transform_args,
            transform_result=tensorflow_computation.transform_result,
        )
        for stub in stubs
    ]
    return mergeable_comp_execution_context.MergeableCompExecutionContext(
        async_contexts=contexts,
        compiler_fn=_mergeable_compiler,
        transform_args=tensorflow_computation.transform_args,
        transform_result=tensorflow_computation.transform_result,
    )


def _native_compiler(comp: Any) -> Any:
    from tensorflow_federated.python.core.backends.native import compiler as native_compiler

    return native_compiler.desugar_and_transform_to_native(comp)


@dataclass(frozen=True)
class Backend:
    """What a simulation runs on, for reports: the workers and whether we own them."""

    kind: str  # "local" (one worker we started) or "remote" (workers given by --workers)
    workers: tuple[str, ...]
    merged: bool


@contextlib.contextmanager
def execution_backend(
    workers: Sequence[WorkerAddress] = (),
    log_path: str | os.PathLike[str] | None = None,
    ready_timeout: float = READY_TIMEOUT_SECONDS,
) -> Iterator[Backend]:
    """Install a TFF execution context for the ``with`` block, then remove it.

    No ``workers``: start one local ``worker_binary`` (stopped on exit, see module docstring).
    With ``workers``: connect to them and split each round's clients across them.
    """
    from tensorflow_federated.python.core.impl.context_stack import context_stack_impl

    stack = context_stack_impl.context_stack
    previous = stack.current
    channels: list[Any] = []
    with contextlib.ExitStack() as cleanup:
        if workers:
            stubs = []
            for addr in workers:
                channel, stub = _connect(addr, ready_timeout, lambda: True)
                channels.append(channel)
                stubs.append(stub)
            context = mergeable_context(stubs)
            backend = Backend("remote", tuple(str(a) for a in workers), merged=True)
        else:
            worker = cleanup.enter_context(WorkerProcess(log_path=log_path))
            channel, stub = _connect(worker.address, ready_timeout, worker.alive)
            channels.append(channel)
            context = local_context(stub)
            backend = Backend("local", (str(worker.address),), merged=False)
        cleanup.callback(lambda: [c.close() for c in channels])
        stack.set_default_context(context)
        cleanup.callback(stack.set_default_context, previous)
        yield backend
