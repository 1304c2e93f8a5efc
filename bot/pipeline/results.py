"""What a pipeline run produced: the currency the reports and the publishers read."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.config import LoadedConfig
from bot.locks.backends import CompileMode
from bot.pipeline.compile import CompileStageResult

if TYPE_CHECKING:
    from bot.pipeline.build import ImageResult
    from bot.pipeline.image_pins import DockerfilePins
    from bot.pipeline.verify import TestResult


@dataclass(frozen=True)
class RunResult:
    repo: str
    config: LoadedConfig
    mode: CompileMode
    compiled: CompileStageResult
    images: tuple[ImageResult, ...] = ()
    tests: tuple[TestResult, ...] = ()
    builder: str | None = None
    written: tuple[str, ...] = ()
    dry_run: bool = False
    duration_s: float = 0.0
    image_pins: tuple[DockerfilePins, ...] = ()
    """Base-image digests and OS package pins refreshed in the Dockerfiles."""

    def changed_files(self) -> dict[str, str]:
        """Every file this run changes: path -> new text (locks, exports, Dockerfiles)."""
        out: dict[str, str] = {}
        for result in self.compiled.results:
            out.update(result.files())
        for pins in self.image_pins:
            if pins.changed:
                out[pins.dockerfile] = pins.new_text
        return out

    @property
    def failed(self) -> bool:
        return (
            any(r.status == "failed" for r in self.compiled.results)
            or any(i.status == "failed" or i.lint_failed for i in self.images)
            or any(not t.ok for t in self.tests)
            or any(p.errors for p in self.image_pins)
        )
