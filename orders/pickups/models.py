"""Models of pickup verification (redemptions and their audit records) arrive with the pickup issue."""
