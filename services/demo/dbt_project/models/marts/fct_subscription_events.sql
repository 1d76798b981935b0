{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='event_id',
        on_schema_change='append_new_columns',
    )
}}

{#- Incremental on the event log: later runs only add events newer than what the table already holds. -#}
select
    events.event_id,
    events.customer_id,
    events.plan_id,
    plans.tier,
    events.event_type,
    events.amount_cents,
    events.occurred_at
from {{ ref('stg_shop__subscription_events') }} as events
left join {{ ref('stg_shop__plans') }} as plans using (plan_id)
{% if is_incremental() %}
where events.occurred_at > (select coalesce(max(occurred_at), '1970-01-01'::timestamp) from {{ this }})
{% endif %}
