"""The app's functions as the host indexes them: queue and timer triggers, ``%SETTING%`` resolved."""

from __future__ import annotations

import logging
import re
import weakref
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import azure.functions as func
from azure.functions.decorators.function_app import Function
from azure.functions.decorators.queue import QueueTrigger
from azure.functions.decorators.timer import TimerTrigger

from local.host.ncrontab import NCrontab

__all__ = ["QueueFunction", "TimerFunction", "discover", "functions_of"]

logger = logging.getLogger(__name__)

_SETTING_REFERENCE = re.compile(r"%([^%]+)%")

# FunctionApp.get_functions() registers the functions' names on the app, so a second call on the same
# app raises; every runner built on one app shares this one list. Weak keys let apps be collected.
_FUNCTIONS: weakref.WeakKeyDictionary[func.FunctionApp, tuple[Function, ...]] = weakref.WeakKeyDictionary()


def functions_of(app: func.FunctionApp) -> tuple[Function, ...]:
    """``app.get_functions()``, called once per app; use this instead of calling it directly."""
    functions = _FUNCTIONS.get(app)
    if functions is None:
        if app.functions_bindings:
            raise RuntimeError(
                "app.get_functions() was already called on this FunctionApp outside local.host; a second "
                "call fails, so index it through local.host.functions.functions_of(app) everywhere"
            )
        functions = tuple(app.get_functions())
        _FUNCTIONS[app] = functions
    return functions


@dataclass(frozen=True)
class QueueFunction:
    """A queue-triggered function and the resolved name of its queue."""

    name: str
    arg_name: str
    queue_name: str
    call: Callable[..., Any]


@dataclass(frozen=True)
class TimerFunction:
    """A timer-triggered function and its parsed schedule."""

    name: str
    arg_name: str
    schedule: NCrontab
    run_on_startup: bool
    call: Callable[..., Any]


def discover(
    app: func.FunctionApp, environ: Mapping[str, str]
) -> tuple[tuple[QueueFunction, ...], tuple[TimerFunction, ...]]:
    """The app's queue and timer functions; ValueError for a binding or setting the host would refuse."""
    queue_functions: list[QueueFunction] = []
    timer_functions: list[TimerFunction] = []
    for function in functions_of(app):
        name = function.get_function_name() or function.get_user_function().__name__
        trigger = function.get_trigger()
        if not isinstance(trigger, QueueTrigger | TimerTrigger):
            logger.info("function %s is not run locally: only queue and timer triggers are", name)
            continue
        others = [binding.name for binding in function.get_bindings() if binding is not trigger]
        if others:
            raise ValueError(
                f"function {name}: the local runner supports no bindings besides the trigger: {others}"
            )
        if isinstance(trigger, QueueTrigger):
            queue_name = _resolve(trigger.queue_name, environ, name, "queue_name")
            queue_functions.append(
                QueueFunction(name, trigger.name, queue_name, function.get_user_function())
            )
        else:
            expression = _resolve(trigger.schedule, environ, name, "schedule")
            try:
                schedule = NCrontab.parse(expression)
            except ValueError as error:
                raise ValueError(f"function {name}: {error}") from None
            timer_functions.append(
                TimerFunction(
                    name, trigger.name, schedule, bool(trigger.run_on_startup), function.get_user_function()
                )
            )
    if not queue_functions and not timer_functions:
        raise ValueError("the app has no queue-triggered or timer-triggered function")
    return tuple(queue_functions), tuple(timer_functions)


def _resolve(value: str, environ: Mapping[str, str], function_name: str, field: str) -> str:
    """Replace ``%SETTING%`` with the app setting, as the host resolves binding expressions."""

    def setting(match: re.Match[str]) -> str:
        key = match[1]
        if key not in environ:
            raise ValueError(
                f"function {function_name}: {field} {value!r} needs app setting {key}, which is not set"
            )
        return environ[key]

    resolved = _SETTING_REFERENCE.sub(setting, value)
    if not resolved:
        raise ValueError(f"function {function_name}: {field} is empty")
    return resolved
