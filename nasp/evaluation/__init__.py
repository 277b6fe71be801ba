"""Evaluate a searched cell: DARTS's evaluation networks trained from scratch (`nasp eval`, `nasp test`)."""

from nasp.evaluation.config import EvalConfig, eval_config
from nasp.evaluation.network import EvalNetwork
from nasp.evaluation.run import dry_run, resume_eval, start_eval, test_model
from nasp.evaluation.task import EvalTask
from nasp.model.budget import count_params

__all__ = ["EvalConfig", "EvalNetwork", "EvalTask", "count_params", "dry_run", "eval_config", "resume_eval",
           "start_eval", "test_model"]
