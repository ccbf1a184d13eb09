"""The completion hook: the one event that member points (and anything else) will hang on.

Sent inside the transaction that completes the order, so a receiver's own writes (a points ledger
row) commit or roll back with the hand-over itself. A receiver that talks to the outside world (SMS,
e-mail, a provider) must defer that with `transaction.on_commit`. Arguments: `order` (as it was read
before completion, status updated), `channel`, `actor`, `at`; `order_completion_voided` adds `reason`.
"""

from django.dispatch import Signal

# An order was completed: picked up at a counter (and, when express delivery lands, delivered).
order_completed = Signal()
# A completion was taken back (a manager voided the redemption): undo what order_completed did.
order_completion_voided = Signal()
