-- The minimum-living standard and the previous year's per-capita disposable income in
-- force on the quarter's last day, for every county of the roster and both 城乡类别.
-- Standards delivered in standards/ (this quarter's delivery or any earlier one; a later
-- delivery of the same county, 城乡类别 and 生效日期 wins) come first; a county or field
-- they do not cover takes the built-in default (parameters/standards.yaml) in force for
-- that county: the engine binds each default as {county_code: {城市, 农村}, "*": …}.
with

delivered as (
    select * exclude (delivery_rank)
    from (
        select *,
               row_number() over (partition by county_code, urban_rural, effective_date order by quarter desc, source_file desc, source_row desc)
                   as delivery_rank
        from staging.standards
        where quarter <= $quarter
    )
    where delivery_rank = 1
),

in_force as (
    select county_code, urban_rural, monthly_standard_yuan, effective_date, disposable_income_yuan
    from delivered
    where effective_date <= $q_end
    qualify row_number() over (partition by county_code, urban_rural order by effective_date desc) = 1
),

-- the latest delivered disposable income in force (a standards row may leave it empty)
income_in_force as (
    select county_code, urban_rural, disposable_income_yuan, effective_date
    from delivered
    where effective_date <= $q_end and disposable_income_yuan is not null
    qualify row_number() over (partition by county_code, urban_rural order by effective_date desc) = 1
),

places as (
    select distinct h.county_code, u.urban_rural
    from staging.households as h
    cross join (values ('城市'), ('农村')) as u(urban_rural)
    where h.quarter = $quarter and h.county_code is not null
),

final as (
    select
        p.county_code,
        p.urban_rural,
        coalesce(
            s.monthly_standard_yuan,
            (coalesce($default_monthly_standard_yuan::json -> p.county_code, $default_monthly_standard_yuan::json -> '*')
                ->> p.urban_rural)::decimal(18, 2)
        ) as monthly_standard_yuan,
        case when s.monthly_standard_yuan is null then 'default' else 'inbox' end as standard_source,
        s.effective_date as standard_effective_date,
        coalesce(
            i.disposable_income_yuan,
            (coalesce($default_disposable_income_yuan::json -> p.county_code, $default_disposable_income_yuan::json -> '*')
                ->> p.urban_rural)::decimal(18, 2)
        ) as disposable_income_yuan,
        case when i.disposable_income_yuan is null then 'default' else 'inbox' end as disposable_income_source
    from places as p
    left join in_force as s using (county_code, urban_rural)
    left join income_in_force as i using (county_code, urban_rural)
)

select * from final
