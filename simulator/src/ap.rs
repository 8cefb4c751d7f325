//! The van's access point: its capacity shared among the meters
//! downloading at once.
//!
//! Each meter is limited by its own flash-bound goodput; the access point
//! by its aggregate capacity. Rates are max-min fair (water-filling): every
//! meter gets the same share unless its own limit is lower, and what the
//! slow ones leave is shared by the others.

/// Max-min fair rates: `caps[i]` is meter i's own limit, `capacity` the
/// shared one; the result has one rate per meter.
pub fn fair_rates(caps: &[f64], capacity: f64) -> Vec<f64> {
    let mut order: Vec<usize> = (0..caps.len()).collect();
    order.sort_by(|a, b| caps[*a].total_cmp(&caps[*b]).then(a.cmp(b)));
    let mut rates = vec![0.0; caps.len()];
    let mut left = capacity;
    for (done, &i) in order.iter().enumerate() {
        let share = left / (caps.len() - done) as f64;
        rates[i] = caps[i].min(share);
        left -= rates[i];
    }
    rates
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn water_filling() {
        assert_eq!(fair_rates(&[], 10.0), Vec::<f64>::new());
        assert_eq!(fair_rates(&[3.0, 5.0], 100.0), [3.0, 5.0]);
        assert_eq!(fair_rates(&[10.0, 10.0, 10.0, 10.0], 20.0), [5.0; 4]);
        // The slow meter keeps its 1; the others share the remaining 9.
        assert_eq!(fair_rates(&[8.0, 1.0, 8.0], 10.0), [4.5, 1.0, 4.5]);
        let rates = fair_rates(&[2.0, 7.0, 4.0, 9.0], 15.0);
        assert!((rates.iter().sum::<f64>() - 15.0).abs() < 1e-9);
        assert!(rates.iter().zip([2.0, 7.0, 4.0, 9.0]).all(|(r, c)| *r <= c));
    }
}
