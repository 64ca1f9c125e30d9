-- The roster of the quarter: one row per member row, with its household's fields.
-- Household size is 家庭人口数 as declared, never a count of member rows (RULES.md).
with

members as (
    select * from staging.members where quarter = $quarter
),

households as (
    select * from staging.households where quarter = $quarter
),

final as (
    select
        m.member_id,
        m.household_id,
        m.name,
        m.id_number,
        m.id_number_valid,
        m.id_number_flag,
        m.id_number_raw,
        m.sex,
        m.birth_date,
        m.relation,
        coalesce(m.is_beneficiary, false) as is_beneficiary,
        h.county_code,
        h.township,
        h.village,
        h.urban_rural,
        h.category,
        h.approval_date,
        h.validity_end,
        h.household_size,
        h.monthly_benefit_yuan,
        h.annual_income_yuan,
        h.financial_assets_yuan
    from members as m
    join households as h using (household_id)
)

select * from final
