{# The source table is loaded by the seed: this reference makes dbt build the seed first. #}
-- depends_on: {{ ref('raw_subscription_events') }}

select
    event_id,
    customer_id,
    plan_id,
    event_type,
    amount_cents,
    occurred_at
from {{ source('shop', 'subscription_events') }}
