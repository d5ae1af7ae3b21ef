"""Bad-review remediation: marketplace reviews about late deliveries get an apology and a coupon."""

from pathlib import Path

#: This package's reply templates (``<lang>/<name>.j2``), loaded by the composition root.
TEMPLATES = Path(__file__).parent / "templates"
