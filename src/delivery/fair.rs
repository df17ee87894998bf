//! Fair shares of the in-flight deliveries between organizations (CONTRACT
//! §11 continued): a pure function of what each organization has running
//! and waiting, so the dispatcher's rule is property-tested on its own.
//!
//! The rule is max-min fairness over `cap` slots: every organization with
//! work gets an equal share, and what one needs less of is shared among the
//! others. An organization already holding more than its share (it filled
//! the slots while alone, and its endpoints hang) starts nothing more,
//! while the others may start up to their share at once, even past `cap`:
//! waiting for a hanging attempt to give its slot back would tie their
//! delivery to the slowest endpoint's timeout. The overdraft is bounded:
//! nothing starts past twice `cap` in all.

/// What one organization has: attempts running, and lanes with a delivery
/// waiting to start (an upper bound: some may turn out not due).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Demand {
    pub busy: usize,
    pub waiting: usize,
}

/// How many attempts each organization of `orgs` may start now, out of
/// `cap` slots shared fairly (see the module doc).
pub fn may_start(orgs: &[Demand], cap: usize) -> Vec<usize> {
    let mut allot = vec![0usize; orgs.len()];
    let want = |i: usize| orgs[i].busy.saturating_add(orgs[i].waiting);
    let mut remaining = cap;
    loop {
        let unmet: Vec<usize> = (0..orgs.len()).filter(|&i| allot[i] < want(i)).collect();
        if unmet.is_empty() || remaining == 0 {
            break;
        }
        let share = remaining / unmet.len();
        if share == 0 {
            // Fewer slots than organizations: one each, those holding the
            // fewest first.
            let mut order = unmet;
            order.sort_by_key(|&i| (allot[i].max(orgs[i].busy), i));
            for i in order.into_iter().take(remaining) {
                allot[i] += 1;
            }
            break;
        }
        for i in unmet {
            let add = share.min(want(i) - allot[i]);
            allot[i] += add;
            remaining -= add;
        }
    }
    let busy: usize = orgs.iter().map(|o| o.busy).fold(0, usize::saturating_add);
    let mut room = cap.saturating_mul(2).saturating_sub(busy);
    orgs.iter()
        .zip(allot)
        .map(|(o, a)| {
            let n = a.saturating_sub(o.busy).min(o.waiting).min(room);
            room -= n;
            n
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(busy: usize, waiting: usize) -> Demand {
        Demand { busy, waiting }
    }

    #[test]
    fn a_hanging_organization_does_not_crowd_another_out() {
        // A filled every slot while alone; B arrives with one event.
        assert_eq!(may_start(&[d(256, 1000), d(0, 1)], 256), vec![0, 1]);
        // B with much to do gets its half at once.
        assert_eq!(may_start(&[d(256, 1000), d(0, 500)], 256), vec![0, 128]);
        // Alone, an organization may use every slot.
        assert_eq!(may_start(&[d(0, 1000)], 256), vec![256]);
        // What one needs less of goes to the others.
        assert_eq!(may_start(&[d(0, 10), d(0, 1000), d(0, 1000)], 256), vec![10, 123, 123]);
        // Fewer slots than organizations: one each to the least served.
        assert_eq!(may_start(&[d(1, 5), d(0, 5), d(0, 5)], 2), vec![0, 1, 1]);
    }

    fn orgs() -> impl Strategy<Value = Vec<Demand>> {
        prop::collection::vec((0usize..600, 0usize..600).prop_map(|(busy, waiting)| Demand { busy, waiting }), 0..12)
    }

    proptest! {
        /// Never more than an organization waits for, never past twice the
        /// cap in all, and within the cap when nothing was over it.
        #[test]
        fn bounded(orgs in orgs(), cap in 1usize..600) {
            let s = may_start(&orgs, cap);
            prop_assert_eq!(s.len(), orgs.len());
            let busy: usize = orgs.iter().map(|o| o.busy).sum();
            let started: usize = s.iter().sum();
            prop_assert!(orgs.iter().zip(&s).all(|(o, n)| *n <= o.waiting));
            prop_assert!(started == 0 || busy + started <= 2 * cap);
            prop_assert!(started <= cap);
        }

        /// Fair: while the slots in use are within the cap, an organization
        /// left waiting holds at least an equal share (cap / organizations
        /// with work), and no slot of the cap is left idle while one waits.
        #[test]
        fn an_equal_share_for_each_and_no_idle_slot(orgs in orgs(), extra in 1usize..600) {
            let busy: usize = orgs.iter().map(|o| o.busy).sum();
            let cap = busy + extra;
            let s = may_start(&orgs, cap);
            let active = orgs.iter().filter(|o| o.busy + o.waiting > 0).count().max(1);
            let total: usize = busy + s.iter().sum::<usize>();
            for (o, n) in orgs.iter().zip(&s) {
                if *n < o.waiting {
                    prop_assert!(o.busy + n >= cap / active, "{:?} got {} of cap {} among {}", o, n, cap, active);
                    prop_assert!(total >= cap, "a slot idles while {:?} waits", o);
                }
            }
        }

        /// The rule does not favour whoever holds more: an organization's
        /// starts never exceed what it would get were it the only one under
        /// its share (monotone in others' busy counts).
        #[test]
        fn more_busy_elsewhere_never_means_more_starts_here(orgs in orgs(), cap in 1usize..600, extra in 0usize..300) {
            prop_assume!(orgs.len() >= 2);
            let s = may_start(&orgs, cap);
            let mut more = orgs.clone();
            more[1].busy += extra;
            let t = may_start(&more, cap);
            prop_assert!(t[0] <= s[0], "{:?} {:?} -> {:?} {:?}", orgs, s, more, t);
        }
    }
}
