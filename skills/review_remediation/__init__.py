"""Bad-review remediation: marketplace reviews about late deliveries get an apology and a coupon."""
