"""`nasp study`: algorithms x seeds, each a search and an evaluation, resumable; its table and figures."""

from nasp.study.config import StudyArm, StudyConfig, study_config
from nasp.study.runner import run_study
from nasp.study.table import study_results, write_table

__all__ = ["StudyArm", "StudyConfig", "run_study", "study_config", "study_results", "write_table"]
