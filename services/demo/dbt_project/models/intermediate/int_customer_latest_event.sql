{#- The latest lifecycle event of every customer: it says which plan they are on and whether they left. -#}
select
    customer_id,
    plan_id as current_plan_id,
    event_type as latest_event_type,
    occurred_at as latest_event_at
from {{ ref('stg_shop__subscription_events') }}
qualify row_number() over (partition by customer_id order by occurred_at desc, event_id desc) = 1
