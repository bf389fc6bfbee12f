"""What a match means: findings built from rule outcomes, grouped, gathered into the
report model that every renderer draws."""
