{{
    config(
        materialized='incremental',
        incremental_strategy='microbatch',
        event_time='revenue_date',
        begin='2026-01-01',
        batch_size='month',
        lookback=1,
        concurrent_batches=false,
    )
}}

{#- Microbatch: dbt runs one query per month and filters the upstream model on its event_time
    (occurred_at) to that month, so `dbt run --event-time-start/--event-time-end` rebuilds part of it. -#}
select
    cast(date_trunc('day', occurred_at) as timestamp) as revenue_date,
    plan_id,
    count(*) as charges,
    sum(amount_cents) as amount_cents
from {{ ref('stg_shop__subscription_events') }}
where amount_cents > 0
group by 1, 2
