/** `npm run docs:config`: writes docs/configuration.md from the settings' definitions. */
import { writeFileSync } from 'node:fs'
import { configurationDocs } from '../lib/config-docs.js'

writeFileSync('docs/configuration.md', configurationDocs())
console.log('wrote docs/configuration.md')
