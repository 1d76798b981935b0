with payments as (
    select
        customer_id,
        sum(amount_cents) as lifetime_cents
    from {{ ref('stg_shop__subscription_events') }}
    group by customer_id
)

select
    cast(customers.customer_id as integer) as customer_id,
    cast(customers.email_domain as varchar) as email_domain,
    cast(customers.country as varchar) as country,
    cast(customers.signed_up_at as date) as signed_up_on,
    cast(latest.current_plan_id as varchar) as current_plan_id,
    cast(coalesce(latest.latest_event_type <> 'cancelled', false) as boolean) as is_active,
    {{ cents_to_currency('coalesce(payments.lifetime_cents, 0)') }} as lifetime_revenue
from {{ ref('stg_shop__customers') }} as customers
left join {{ ref('int_customer_latest_event') }} as latest using (customer_id)
left join payments using (customer_id)
