select
    plan_id,
    plan_name,
    tier,
    billing_interval,
    price_cents,
    case billing_interval
        when 'year' then cast(round(price_cents / 12.0) as integer)
        else price_cents
    end as monthly_price_cents
from {{ ref('raw_plans') }}
