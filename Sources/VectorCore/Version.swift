/// Shoal's version, reported by Health and `shoal --version`.
public enum ShoalVersion {
    public static let current = "0.1.0"
}
