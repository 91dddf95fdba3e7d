/** Small named facts about the data, shared by every API node (migration 0009). */
export interface SettingRepository {
  /** The value, or null when never set. */
  get(name: string): Promise<string | null>
  /** Sets the value, whether or not it was set before. */
  put(name: string, value: string): Promise<void>
}
