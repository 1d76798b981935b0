select
    plan_id,
    plan_name,
    tier,
    billing_interval,
    {{ cents_to_currency('price_cents') }} as list_price,
    {{ cents_to_currency('monthly_price_cents') }} as monthly_price
from {{ ref('stg_shop__plans') }}
