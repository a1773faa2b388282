"""Step Functions Local's ``MockConfigFile`` format, loaded into moto's Step Functions interpreter.

moto (pinned exactly in requirements.txt) carries the mocked-response classes of LocalStack's
interpreter (``moto/stepfunctions/parser/mocking``) but nothing loads a config file; this module
reads one and hands its test case to every execution started inside ``mocked_test_case``. A state
named in the test case gets its mocked answers (indexed by retry number, as in Step Functions
Local); every other state calls moto's real emulated services.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

from moto.stepfunctions.parser.asl.component.common.error_name import custom_error_name
from moto.stepfunctions.parser.asl.component.common.error_name.error_name import ErrorName
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_unsupported as unsupported_module,
)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import (
    ResourceCondition,
)
from moto.stepfunctions.parser.backend import execution as execution_module
from moto.stepfunctions.parser.mocking.mock_config import (
    MockedResponse,
    MockedResponseReturn,
    MockedResponseThrow,
    MockTestCase,
    StateMockedResponses,
    _parse_mocked_response_range,
)

MOCK_CONFIG = Path(__file__).parent / "stepfunctions_mock_config.json"


def load_test_case(state_machine: str, test_case: str, path: Path = MOCK_CONFIG) -> MockTestCase:
    config = json.loads(path.read_text())
    cases = config["StateMachines"][state_machine]["TestCases"]
    if test_case not in cases:
        raise KeyError(f"no test case {test_case!r} for {state_machine!r}; known: {sorted(cases)}")
    states = []
    for state_name, response_name in cases[test_case].items():
        responses: list[MockedResponse] = []
        for attempts, answer in config["MockedResponses"][response_name].items():
            start, end = _parse_mocked_response_range(attempts)
            if "Return" in answer:
                responses.append(MockedResponseReturn(start, end, answer["Return"]))
            else:
                throw = answer["Throw"]
                responses.append(MockedResponseThrow(start, end, throw["Error"], throw["Cause"]))
        states.append(StateMockedResponses(state_name, response_name, responses))
    return MockTestCase(state_machine, test_case, states)


def any_error_name(self, error_name: str | None) -> None:
    """A mocked Throw may name a ``States.*`` error (``States.TaskFailed`` is what a failed EMR
    step raises), as in Step Functions Local; moto's copy refuses such names wherever it carries
    an error on (Parallel, Map, Fail), so they are let through as they are."""
    ErrorName.__init__(self, error_name=error_name)


@contextlib.contextmanager
def mocked_test_case(test_case: MockTestCase) -> Iterator[None]:
    """Every execution started inside runs with ``test_case``'s mocked responses."""
    original = execution_module.Execution._get_start_execution_worker

    def start_worker(self):
        worker = original(self)
        worker._mock_test_case = test_case
        return worker

    # moto's interpreter knows fewer optimised integrations than Step Functions Local; for
    # those it relays (EMR, Athena) accept .sync, which in mocked mode only returns the mock.
    patterns = {ResourceCondition.WaitForTaskToken, ResourceCondition.Sync}
    with (
        mock.patch.object(custom_error_name.CustomErrorName, "__init__", any_error_name),
        mock.patch.object(execution_module.Execution, "_get_start_execution_worker", start_worker),
        mock.patch.object(unsupported_module, "_SUPPORTED_INTEGRATION_PATTERNS", patterns),
    ):
        yield
