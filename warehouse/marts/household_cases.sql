-- marts.household_cases: one row per flagged household, in priority order: red before
-- orange before yellow, ineligibility before need before data quality, older due dates
-- first. The caseworker lists follow this order.
with

warnings as (
    select * from __warnings where status in ('new', 'persisting')
),

households as (
    select household_id, category, household_size from staging.households where quarter = $quarter
),

heads as (
    select household_id, name
    from staging.members where quarter = $quarter
    qualify row_number() over (partition by household_id order by relation = '户主' desc, member_id) = 1
),

ranked as (
    select
        *,
        case severity when 'red' then 1 when 'orange' then 2 else 3 end as severity_rank,
        case rule_kind when 'ineligibility' then 1 when 'need' then 2 else 3 end as kind_rank
    from warnings
),

per_household as (
    select
        household_id,
        any_value(county_code) as county_code,
        any_value(township) as township,
        any_value(village) as village,
        min(severity_rank) as severity_rank,
        min(kind_rank) as kind_rank,
        count(*) as warning_count,
        count(*) filter (where rule_kind = 'ineligibility') as ineligibility_count,
        count(*) filter (where rule_kind = 'need') as need_count,
        count(*) filter (where rule_kind = 'data_quality') as data_quality_count,
        string_agg(distinct rule_code, ',' order by rule_code) as rule_codes,
        min(due_date) as earliest_due_date,
        count(*) filter (where status = 'new') as new_warning_count
    from ranked
    group by household_id
),

final as (
    select
        $quarter as quarter,
        row_number() over (order by severity_rank, kind_rank, earliest_due_date, household_id)::integer as priority,
        p.household_id,
        p.county_code,
        p.township,
        p.village,
        h.category,
        h.household_size,
        hd.name as head_name,
        case p.severity_rank when 1 then 'red' when 2 then 'orange' else 'yellow' end as top_severity,
        p.ineligibility_count > 0 as has_ineligibility,
        p.warning_count::integer as warning_count,
        p.ineligibility_count::integer as ineligibility_count,
        p.need_count::integer as need_count,
        p.data_quality_count::integer as data_quality_count,
        p.rule_codes,
        p.earliest_due_date,
        p.earliest_due_date <= $q_end as overdue,
        p.new_warning_count::integer as new_warning_count
    from per_household as p
    left join households as h using (household_id)
    left join heads as hd using (household_id)
)

select * from final order by priority
