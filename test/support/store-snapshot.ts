import type { DynamoDBClient } from '@aws-sdk/client-dynamodb'
import { DynamoDBDocumentClient, ScanCommand } from '@aws-sdk/lib-dynamodb'

/** Every item of a table, by `pk|sk`, as JSON text (so that equal means unchanged). */
export type Snapshot = ReadonlyMap<string, string>

/** A strongly consistent Scan of the whole (small) test table. */
export async function snapshot(client: DynamoDBClient, tableName: string): Promise<Snapshot> {
  const doc = DynamoDBDocumentClient.from(client)
  const items = new Map<string, string>()
  let cursor: Record<string, unknown> | undefined
  do {
    const page = await doc.send(
      new ScanCommand({ TableName: tableName, ConsistentRead: true, ExclusiveStartKey: cursor }),
    )
    for (const item of page.Items ?? []) {
      const sorted = Object.fromEntries(Object.entries(item).sort(([a], [b]) => a.localeCompare(b)))
      items.set(`${item.pk}|${item.sk}`, JSON.stringify(sorted))
    }
    cursor = page.LastEvaluatedKey
  } while (cursor)
  return items
}

export interface Change {
  readonly key: string
  // biome-ignore lint/suspicious/noExplicitAny: items are inspected freely
  readonly before: any
  // biome-ignore lint/suspicious/noExplicitAny: items are inspected freely
  readonly after: any
}

/** The items that were added, removed or changed between two snapshots. */
export function changes(before: Snapshot, after: Snapshot): Change[] {
  const keys = new Set([...before.keys(), ...after.keys()])
  const parse = (text: string | undefined) => (text === undefined ? undefined : JSON.parse(text))
  return [...keys]
    .filter((key) => before.get(key) !== after.get(key))
    .sort()
    .map((key) => ({ key, before: parse(before.get(key)), after: parse(after.get(key)) }))
}
