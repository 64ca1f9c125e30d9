-- marts.warnings for one quarter: the rule families' findings with the household's place,
-- the person's name and ID, a warning_id that is the same for the same household, member
-- and rule in every quarter, and the lifecycle status (RULES.md, Lifecycle):
--   new         raised now, not in the quarter before
--   persisting  raised now and in the quarter before (first_seen_quarter kept)
--   resolved_by_verification
--               a caseworker returned 不属实 for it and what it rests on (the basis) has not
--               changed since: shown once with this status, then no more while that holds.
with

findings as (
    select * from rules.findings where quarter = $quarter
),

households as (
    select household_id, county_code, township, village from staging.households where quarter = $quarter
),

members as (
    select member_id, household_id, name, coalesce(id_number, id_number_raw) as id_number, relation
    from staging.members where quarter = $quarter
),

heads as (  -- a household warning is addressed to the head of the household
    select household_id, name, id_number
    from members
    qualify row_number() over (partition by household_id order by relation = '户主' desc, member_id) = 1
),

previous as (
    select warning_id, first_seen_quarter from marts.warnings
    where quarter = $previous_quarter and status in ('new', 'persisting')
),

identified as (
    select
        f.*,
        'W' || substr(sha256(f.rule_code || '|' || f.household_id || '|' || coalesce(f.member_id, '')), 1, 16) as warning_id,
        md5(array_to_string(coalesce(f.basis, []), '|')) as evidence_basis
    from findings as f
),

verdicts as (  -- each warning's latest returned result, with what the warning rested on then
    select v.*, w.evidence_basis as verified_basis
    from int_verifications as v
    left join marts.warnings as w on w.warning_id = v.warning_id and w.quarter = v.list_quarter
),

dismissal_shown as (  -- dismissals already shown once
    select distinct warning_id, evidence_basis from marts.warnings
    where quarter < $quarter and status = 'resolved_by_verification'
),

classified as (
    select
        i.*,
        v.result as verification_result,
        v.note as verification_note,
        v.list_quarter as verified_quarter,
        coalesce(v.result = '不属实' and v.verified_basis = i.evidence_basis, false) as dismissed,
        d.warning_id is not null as already_shown
    from identified as i
    left join verdicts as v using (warning_id)
    left join dismissal_shown as d on d.warning_id = i.warning_id and d.evidence_basis = i.evidence_basis
),

final as (
    select
        i.quarter,
        i.warning_id,
        i.rule_code,
        r.title as rule_title,
        i.rule_kind,
        i.severity,
        i.household_id,
        i.member_id,
        h.county_code,
        h.township,
        h.village,
        -- a member warning names that member (even when the roster left the ID empty); a
        -- household warning names the head
        case when i.member_id is null then hd.name else m.name end as name,
        case when i.member_id is null then hd.id_number else m.id_number end as id_number,
        i.evidence,
        i.policy_ref,
        i.action,
        i.due_date,
        case when i.dismissed then 'resolved_by_verification' when p.warning_id is null then 'new' else 'persisting' end as status,
        coalesce(p.first_seen_quarter, i.quarter) as first_seen_quarter,
        i.evidence_basis,
        i.verification_result,
        i.verification_note,
        i.verified_quarter
    from classified as i
    left join rule_catalog as r using (rule_code)
    left join households as h using (household_id)
    left join members as m on m.member_id = i.member_id
    left join heads as hd on hd.household_id = i.household_id
    left join previous as p using (warning_id)
    where not (i.dismissed and i.already_shown)
)

select * from final
