{#- Every cent charged in the event log is in the daily revenue, and nothing else is. Rows returned = failure. -#}
with from_events as (
    select coalesce(sum(amount_cents), 0) as cents
    from {{ ref('fct_subscription_events') }}
    where amount_cents > 0
),

from_revenue as (
    select coalesce(sum(amount_cents), 0) as cents
    from {{ ref('fct_daily_revenue') }}
)

select
    from_events.cents as event_cents,
    from_revenue.cents as revenue_cents
from from_events
cross join from_revenue
where from_events.cents <> from_revenue.cents
