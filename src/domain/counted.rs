//! Counts as the pages say them.

/// "1 user", "0 users", "3 users".
pub fn users_counted(n: u64) -> String {
    match n {
        1 => "1 user".to_string(),
        n => format!("{n} users"),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_user_is_singular() {
        assert_eq!(super::users_counted(1), "1 user");
        assert_eq!(super::users_counted(0), "0 users");
        assert_eq!(super::users_counted(4_500), "4500 users");
    }
}
