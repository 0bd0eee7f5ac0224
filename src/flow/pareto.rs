//! The Pareto front of a set of design points: a point is on it when no
//! other point is at least as good in every objective and better in one.
//! Objectives are minimized (cycles, energy, area).

/// For each point (its objectives, all minimized; `None` for a point
/// without figures), whether it is Pareto-optimal. Points with equal
/// objectives are all on the front.
pub fn front<const N: usize>(points: &[Option<[f64; N]>]) -> Vec<bool> {
    let dominates =
        |a: &[f64; N], b: &[f64; N]| a.iter().zip(b).all(|(x, y)| x <= y) && a.iter().zip(b).any(|(x, y)| x < y);
    points
        .iter()
        .map(|p| match p {
            None => false,
            Some(p) => !points.iter().flatten().any(|q| dominates(q, p)),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::front;

    #[test]
    fn dominated_points_are_off_the_front() {
        let pts = [
            Some([1.0, 5.0]),
            Some([2.0, 2.0]),
            Some([3.0, 3.0]), // dominated by [2, 2]
            Some([5.0, 1.0]),
            None,
            Some([2.0, 2.0]), // equal to a front point: also on it
            Some([1.0, 6.0]), // dominated by [1, 5]
        ];
        assert_eq!(front(&pts), [true, true, false, true, false, true, false]);
    }
}
